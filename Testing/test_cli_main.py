"""The CLI's exit-status contract: 0 ok, 2 bad input with one line on stderr, never a traceback."""

import subprocess
import sys

import pytest

from BreastSubtypeLib import __version__
from BreastSubtypeLib.cli.main import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_option_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--no-such-option"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--no-such-option" in err


def test_help_does_not_import_torch():
    code = "import sys; from BreastSubtypeLib.cli.main import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_negative_first_coordinate_is_a_value_not_an_option(tmp_path, capsys):
    # Without gluing, argparse would report "expected one argument" for --seed-ras.
    code = main(
        [
            "roi",
            "--image",
            str(tmp_path / "missing.nrrd"),
            "--seed-ras",
            "-12.5,3,40",
            "--out",
            str(tmp_path / "rois.nrrd"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "expected one argument" not in err and "missing.nrrd" in err
