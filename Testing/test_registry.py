"""Model registry: downloads are verified by SHA-256 before use, zips are extracted safely, nothing
is fetched implicitly. Served by a local http.server on 127.0.0.1 started and stopped here."""

import functools
import hashlib
import http.server
import json
import threading
import zipfile

import pytest

from BreastSubtypeLib.cli.main import main
from BreastSubtypeLib.errors import ModelPackageError
from BreastSubtypeLib.model import registry


def _package_zip(path, *, weights=b"weights", top_folder="pkg"):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{top_folder}/configs/metadata.json", json.dumps({"version": "1.0.0"}))
        archive.writestr(f"{top_folder}/models/model.safetensors", weights)
        archive.writestr(f"{top_folder}/docs/README.md", "# model card")
        archive.writestr(f"{top_folder}/LICENSE", "Apache-2.0")
    return path


@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def site(tmp_path, server, monkeypatch):
    """A registry with one good and one tampered model, and an empty user cache."""
    root, url = server
    good = _package_zip(root / "good.zip")
    _package_zip(root / "tampered.zip", weights=b"weights, but altered after publication")
    good_sha = hashlib.sha256(good.read_bytes()).hexdigest()
    models = [
        {
            "id": "demo",
            "title": "Demo",
            "version": "0.1.0",
            "builtin_path": "model/demo_model",
            "url": None,
            "sha256": None,
            "size_bytes": None,
            "cpu_seconds": 1.0,
            "gpu_seconds": None,
            "demonstration": True,
        },
        {
            "id": "good",
            "title": "Good",
            "version": "1.0.0",
            "url": f"{url}/good.zip",
            "sha256": good_sha,
            "size_bytes": good.stat().st_size,
            "cpu_seconds": 1.0,
            "gpu_seconds": 0.1,
            "demonstration": False,
        },
        {
            "id": "tampered",
            "title": "Tampered",
            "version": "1.0.0",
            "url": f"{url}/tampered.zip",
            "sha256": good_sha,
            "size_bytes": None,
            "cpu_seconds": None,
            "gpu_seconds": None,
            "demonstration": False,
        },
    ]
    registry_file = tmp_path / "Models.json"
    registry_file.write_text(json.dumps({"schema_version": 1, "models": models}))
    monkeypatch.setenv("BREAST_SUBTYPE_MODELS_JSON", str(registry_file))
    monkeypatch.setenv("BREAST_SUBTYPE_CACHE", str(tmp_path / "cache"))
    return root, tmp_path / "cache"


def test_shipped_registry_lists_the_builtin_demonstration_model():
    demo = registry.get_entry("demo", registry.SHIPPED_REGISTRY)
    assert demo.builtin and demo.demonstration and demo.url is None


def test_nothing_is_downloaded_implicitly(site):
    with pytest.raises(ModelPackageError, match="models download good"):
        registry.resolve("good")


def test_download_verifies_and_installs_into_the_user_cache(site):
    _, cache = site
    folder = registry.download("good")
    assert folder == cache / "good" / "1.0.0"
    assert (folder / "models" / "model.safetensors").read_bytes() == b"weights"
    assert registry.resolve("good") == folder
    assert [p.name for p in cache.iterdir()] == ["good"]  # no zip or temporary left behind


def test_tampered_download_is_refused_and_removed(site):
    _, cache = site
    with pytest.raises(ModelPackageError, match="SHA-256"):
        registry.download("tampered")
    assert not (cache / "tampered" / "1.0.0").exists()
    assert [p for p in cache.rglob("*") if p.is_file()] == []


def test_offline_install_matches_the_registry_by_sha256(site):
    served, cache = site
    folder = registry.install_from_file(served / "good.zip")
    assert folder == cache / "good" / "1.0.0"
    with pytest.raises(ModelPackageError, match="SHA-256"):
        registry.install_from_file(served / "tampered.zip", model_id="good")


def test_zip_with_path_traversal_is_refused(site, tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("configs/metadata.json", "{}")
        archive.writestr("models/model.safetensors", b"w")
        archive.writestr("../../outside.txt", "x")
    with pytest.raises(ModelPackageError, match="unsafe entry"):
        registry.install_from_file(evil)
    assert not (tmp_path / "outside.txt").exists()


def test_zip_that_is_not_a_model_package_is_refused(site, tmp_path):
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("notes.txt", "x")
    with pytest.raises(ModelPackageError, match="lacks configs/metadata.json"):
        registry.install_from_file(other)


def test_cli_models_download_tampered_exits_2_with_one_line(site, capsys):
    assert main(["models", "download", "tampered"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SHA-256" in err


def test_cli_models_list_shows_installation_state(site, capsys):
    assert main(["models", "download", "good"]) == 0
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    rows = {line.split()[0]: line.split()[2] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["good"] == "yes" and rows["tampered"] == "no"


def test_the_registry_is_one_file_shipped_as_package_data():
    """Wheels, editable installs and Slicer (CMake RESOURCES) all carry BreastSubtypeLib's package data."""
    import fnmatch
    import tomllib

    root = registry.PACKAGE_DIR.parent
    relative = registry.SHIPPED_REGISTRY.relative_to(registry.PACKAGE_DIR).as_posix()
    patterns = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"
    ]
    assert any(fnmatch.fnmatch(relative, p.removeprefix("**/")) for p in patterns["BreastSubtypeLib"])
    assert relative in (registry.PACKAGE_DIR / "CMakeLists.txt").read_text(encoding="utf-8")
    assert not (root / "Resources" / "Models.json").exists()  # no second copy to drift


def test_registry_entry_matches_the_shipped_demo_package():
    from BreastSubtypeLib.model.package import load_model_package

    entry = registry.get_entry("demo", registry.SHIPPED_REGISTRY)
    assert entry.version == load_model_package("demo").metadata["version"]
