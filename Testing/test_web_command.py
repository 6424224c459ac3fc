"""``breast-subtype web``: local by default, loud when exposed, one-line errors for bad flags."""

from __future__ import annotations

from BreastSubtypeLib.cli import web_command
from BreastSubtypeLib.cli.main import build_parser, main


def test_listens_on_loopback_by_default():
    args = build_parser().parse_args(["web"])
    assert args.host == "127.0.0.1"
    assert web_command.exposure_warning(args.host) is None


def test_any_other_host_gets_a_warning_naming_it():
    warning = web_command.exposure_warning("0.0.0.0")
    assert warning.startswith("WARNING: listening on 0.0.0.0")
    assert "no login" in warning


def test_bad_port_is_a_one_line_error_with_exit_status_2(capsys):
    assert main(["web", "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--port must be between 0 and 65535" in err


def test_non_positive_upload_limit_is_refused(capsys):
    assert main(["web", "--max-upload-mb", "0"]) == 2
    assert "--max-upload-mb must be positive" in capsys.readouterr().err
