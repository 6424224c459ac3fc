"""``breast-subtype web``: local by default, a token always, TLS (or an explicit opt-in) for any other
address, one-line errors for bad flags. Nothing here starts a server."""

from __future__ import annotations

import json

import pytest

from BreastSubtypeLib.cli import web_command
from BreastSubtypeLib.cli.main import build_parser, main
from BreastSubtypeWeb.security import TOKEN_ENV, AccessPolicy, server_host_names


def test_listens_on_loopback_by_default():
    args = build_parser().parse_args(["web"])
    assert args.host == "127.0.0.1"
    assert web_command.exposure_warning(args.host, tls=False) is None


def test_a_random_token_unless_one_is_given(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    args = build_parser().parse_args(["web"])
    first, second = web_command.access_token(args), web_command.access_token(args)
    assert first != second and len(first) >= 40
    monkeypatch.setenv(TOKEN_ENV, "from-the-environment-1234")
    assert web_command.access_token(args) == "from-the-environment-1234"
    args = build_parser().parse_args(["web", "--token", "from-the-command-line-99"])
    assert web_command.access_token(args) == "from-the-command-line-99"


@pytest.mark.parametrize("token", ["short", "1234567890123456789", "has spaces in it 12345", "true"])
def test_a_weak_or_unusable_token_is_refused_in_one_line(capsys, token):
    assert main(["web", "--token", token]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "access token must" in err


def test_another_address_without_tls_is_refused(capsys):
    assert main(["web", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Refusing to listen on 0.0.0.0 without TLS" in err


def test_tls_needs_both_files_and_they_must_exist(capsys, tmp_path):
    assert main(["web", "--host", "0.0.0.0", "--tls-cert", str(tmp_path / "cert.pem")]) == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err
    args = ["web", "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem")]
    assert main(args) == 2
    assert "cert.pem does not exist" in capsys.readouterr().err


def test_an_exposed_server_is_announced_loudly():
    warning = web_command.exposure_warning("10.0.0.5", tls=False)
    assert warning.startswith("WARNING: listening on 10.0.0.5 WITHOUT TLS")
    assert "over HTTPS" in web_command.exposure_warning("10.0.0.5", tls=True)


def test_bad_port_is_a_one_line_error_with_exit_status_2(capsys):
    assert main(["web", "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--port must be between 0 and 65535" in err


@pytest.mark.parametrize("flag", ["--max-upload-mb", "--image-memory-mb"])
def test_non_positive_limits_are_refused(capsys, flag):
    assert main(["web", flag, "0"]) == 2
    assert f"{flag} must be positive" in capsys.readouterr().err


def test_an_allowed_origin_must_be_an_origin(capsys):
    assert main(["web", "--allow-origin", "https://launcher.example/path"]) == 2
    assert "--allow-origin takes scheme://host[:port]" in capsys.readouterr().err


def test_host_and_origin_checks():
    policy = AccessPolicy(
        token="t" * 20,
        host_names=server_host_names("127.0.0.1", ("radiology.example",)),
        extra_origins=frozenset({"https://launcher.example"}),
    )
    for host in ("127.0.0.1:8080", "localhost:8080", "[::1]:8080", "RADIOLOGY.example"):
        assert policy.host_allowed(host), host
    for host in ("evil.example:8080", "127.0.0.1.evil.example", "", None):
        assert not policy.host_allowed(host), host
    assert policy.origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080")
    assert policy.origin_allowed("https://launcher.example", "127.0.0.1:9001")
    assert policy.origin_allowed("HTTPS://Launcher.example:443/", "127.0.0.1:9001")
    for origin in ("http://evil.example", "null", "http://127.0.0.1:9999", "file://"):
        assert not policy.origin_allowed(origin, "127.0.0.1:8080"), origin
    assert policy.token_matches("t" * 20) and not policy.token_matches("wslink-secret")


def test_the_launcher_configuration_starts_one_guarded_session_per_browser(tmp_path, capsys):
    args = [
        "web",
        "--launcher-config",
        str(tmp_path),
        "--launcher-port",
        "9100",
        "--session-ports",
        "9101-9103",
    ]
    args += ["--public-origin", "https://radiology.example", "--allow-host", "radiology.example"]
    assert main(args) == 0
    config = json.loads((tmp_path / "launcher.json").read_text(encoding="utf-8"))
    command = config["apps"]["trame"]["cmd"]
    # The launcher's own per-session port and secret; the page's origin is the launcher's.
    assert command[command.index("--port") + 1] == "${port}"
    assert command[command.index("--token") + 1] == "${secret}"
    assert command[command.index("--allow-origin") + 1] == "https://radiology.example"
    assert "--allow-host=radiology.example" in command
    assert config["resources"] == [{"host": "127.0.0.1", "port_range": [9101, 9103]}]
    assert (tmp_path / "www" / "index.html").is_file()
    assert (tmp_path / "www" / "breast_subtype_web" / "upload.js").is_file()
    assert "wslink.launcher" in capsys.readouterr().out


@pytest.mark.parametrize("ports", ["9101", "9103-9101", "80-90"])
def test_a_bad_session_port_range_is_refused(tmp_path, capsys, ports):
    assert main(["web", "--launcher-config", str(tmp_path), "--session-ports", ports]) == 2
    assert "--session-ports" in capsys.readouterr().err
