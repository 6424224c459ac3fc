"""The model registry: which models exist (``Resources/Models.json`` in this package), where they
live, how to get them.

Built-in models (the demonstration model) ship inside the package. Other models are downloaded
only on explicit request, verified against their SHA-256 before anything is extracted, and cached
in the user folder (``$BREAST_SUBTYPE_CACHE`` or ``~/.cache/breast-subtype/models``). An offline
site installs the same zip with :func:`install_from_file`.

>>> [m.id for m in list_models()]  # doctest: +SKIP
['demo']
>>> resolve("demo")  # a folder laid out like a MONAI bundle  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from BreastSubtypeLib.errors import ModelPackageError
from BreastSubtypeLib.progress import ProgressCallback, report

PACKAGE_DIR = Path(__file__).resolve().parents[1]
# One file, inside the package, so a wheel, an editable install and the Slicer extension (CMake
# installs it as package data of BreastSubtypeLib) all find it at the same place.
# $BREAST_SUBTYPE_MODELS_JSON overrides it (sites, tests).
SHIPPED_REGISTRY = PACKAGE_DIR / "Resources" / "Models.json"
REQUIRED_PACKAGE_FILES = ("configs/metadata.json", "models/model.safetensors")
_VERIFIED_MARKER = ".verified-sha256"
_MAX_UNZIPPED_BYTES = 4 << 30  # a zip bomb stops here, far above any real model


@dataclass(frozen=True)
class ModelEntry:
    id: str
    title: str
    version: str
    url: str | None
    sha256: str | None
    size_bytes: int | None
    cpu_seconds: float | None
    gpu_seconds: float | None
    demonstration: bool
    builtin_path: str | None = None

    @property
    def builtin(self) -> bool:
        return self.builtin_path is not None


def registry_path() -> Path:
    override = os.environ.get("BREAST_SUBTYPE_MODELS_JSON")
    if override:
        return Path(override)
    return SHIPPED_REGISTRY


def cache_dir() -> Path:
    override = os.environ.get("BREAST_SUBTYPE_CACHE")
    if override:
        return Path(override).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "breast-subtype" / "models"


def list_models(path: str | Path | None = None) -> list[ModelEntry]:
    source = Path(path) if path else registry_path()
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
        return [
            ModelEntry(
                id=str(item["id"]),
                title=str(item["title"]),
                version=str(item["version"]),
                url=item.get("url"),
                sha256=(item.get("sha256") or None) and str(item["sha256"]).lower(),
                size_bytes=item.get("size_bytes"),
                cpu_seconds=item.get("cpu_seconds"),
                gpu_seconds=item.get("gpu_seconds"),
                demonstration=bool(item.get("demonstration", False)),
                builtin_path=item.get("builtin_path"),
            )
            for item in data["models"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelPackageError(f"Model registry {source} is missing or malformed ({exc}).") from exc


def get_entry(model_id: str, path: str | Path | None = None) -> ModelEntry:
    for entry in list_models(path):
        if entry.id == model_id:
            return entry
    known = ", ".join(entry.id for entry in list_models(path))
    raise ModelPackageError(f"Unknown model id {model_id!r} in {path or registry_path()} (known: {known}).")


def installed_path(entry: ModelEntry) -> Path:
    if entry.builtin:
        return PACKAGE_DIR / entry.builtin_path
    return cache_dir() / entry.id / entry.version


def is_installed(entry: ModelEntry) -> bool:
    folder = installed_path(entry)
    if entry.builtin:
        return all((folder / name).is_file() for name in REQUIRED_PACKAGE_FILES)
    return (folder / _VERIFIED_MARKER).is_file()


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve(model_spec: str | os.PathLike, path: str | Path | None = None) -> Path:
    """A model id or a package folder/zip → the folder to load. Never downloads."""
    spec = str(model_spec)
    candidate = Path(spec).expanduser()
    if candidate.is_dir():
        _check_layout(candidate, candidate)
        return candidate
    if candidate.is_file() and zipfile.is_zipfile(candidate):
        return install_from_file(candidate)
    if os.sep in spec or spec.endswith(".zip"):
        raise ModelPackageError(f"Model package {candidate} does not exist.")
    entry = get_entry(spec, path)
    folder = installed_path(entry)
    if not is_installed(entry):
        if entry.builtin:
            raise ModelPackageError(f"Built-in model {entry.id!r} is missing from {folder}.")
        raise ModelPackageError(
            f"Model {entry.id!r} is not installed in {cache_dir()}; "
            f"run `breast-subtype models download {entry.id}` or `breast-subtype models install FILE`."
        )
    return folder


def download(
    model_id: str, *, path: str | Path | None = None, progress: ProgressCallback | None = None
) -> Path:
    """Download a registered model into the user cache, verify its SHA-256, extract it; return its folder."""
    entry = get_entry(model_id, path)
    if entry.builtin:
        return installed_path(entry)
    if not entry.url or not entry.sha256:
        raise ModelPackageError(
            f"Model {entry.id!r} has no download url and sha256 in {path or registry_path()}."
        )
    if is_installed(entry):
        return installed_path(entry)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{entry.id}.", suffix=".zip.part", dir=cache)
    tmp = Path(tmp_name)
    try:
        import urllib.request  # only for a download: it pulls in ssl, email and http at start-up

        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(entry.url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or entry.size_bytes or 0)
            done = 0
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                done += len(block)
                if total:
                    report(progress, 0.9 * done / total, f"downloading {entry.id}")
        report(progress, 0.9, "verifying SHA-256")
        return _install_zip(tmp, entry, source=entry.url)
    except OSError as exc:
        raise ModelPackageError(f"Could not download model {entry.id!r} from {entry.url} ({exc}).") from exc
    finally:
        tmp.unlink(missing_ok=True)  # the zip is never kept: a tampered file is removed
        report(progress, 1.0, "done")


def install_from_file(
    zip_path: str | Path, *, model_id: str | None = None, path: str | Path | None = None
) -> Path:
    """Install a model zip (offline sites). A registered id, or a zip whose SHA-256 matches a registry
    entry, is verified against the registry; any other zip is installed under its own SHA-256."""
    zip_path = Path(zip_path)
    if not zip_path.is_file() or not zipfile.is_zipfile(zip_path):
        raise ModelPackageError(f"Model file {zip_path} is not a zip file.")
    digest = sha256_of(zip_path)
    if model_id is not None:
        entry = get_entry(model_id, path)
    else:
        matches = [e for e in list_models(path) if e.sha256 == digest]
        entry = matches[0] if matches else None
    if entry is None:
        # An unregistered package (a site's own model): cached by content, so it can be reused.
        entry = ModelEntry(zip_path.stem, zip_path.stem, digest[:16], None, digest, None, None, None, False)
        if (cache_dir() / entry.id / entry.version / _VERIFIED_MARKER).is_file():
            return cache_dir() / entry.id / entry.version
    return _install_zip(zip_path, entry, digest=digest)


def _install_zip(
    zip_path: Path, entry: ModelEntry, *, digest: str | None = None, source: str | None = None
) -> Path:
    digest = digest or sha256_of(zip_path)
    source = source or str(zip_path)
    if entry.sha256 and digest != entry.sha256:
        raise ModelPackageError(
            f"Model file {source} fails its SHA-256 check for {entry.id!r} (expected {entry.sha256}, got {digest}); "
            "it was not installed."
        )
    target = cache_dir() / entry.id / entry.version
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.version}.", suffix=".tmp", dir=target.parent))
    try:
        root = _extract_safely(zip_path, staging, source)
        _check_layout(root, source)
        (root / _VERIFIED_MARKER).write_text(digest + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(root, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _extract_safely(zip_path: Path, destination: Path, source: str) -> Path:
    """Extract refusing absolute paths, '..', links and zip bombs; return the package root inside."""
    with zipfile.ZipFile(zip_path) as archive:
        members = archive.infolist()
        if sum(m.file_size for m in members) > _MAX_UNZIPPED_BYTES:
            raise ModelPackageError(
                f"Model file {source} unpacks to more than {_MAX_UNZIPPED_BYTES >> 30} GB."
            )
        for member in members:
            name = PurePosixPath(member.filename.replace("\\", "/"))
            is_link = stat.S_ISLNK(member.external_attr >> 16)
            if name.is_absolute() or ".." in name.parts or is_link or (name.parts and ":" in name.parts[0]):
                raise ModelPackageError(f"Model file {source} holds an unsafe entry {member.filename!r}.")
        archive.extractall(destination)
    # Packages are zipped either as their content or as one top-level folder.
    if (destination / "configs").is_dir():
        return destination
    children = [p for p in destination.iterdir() if p.is_dir()]
    if len(children) == 1 and (children[0] / "configs").is_dir():
        return children[0]
    return destination


def _check_layout(folder: Path, source: str | Path) -> None:
    missing = [name for name in REQUIRED_PACKAGE_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelPackageError(f"Model package {source} lacks {', '.join(missing)}.")
