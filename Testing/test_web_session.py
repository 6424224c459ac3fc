"""The web app's per-session folder: private, size-limited, no path traversal either way."""

from __future__ import annotations

import stat

import pytest

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeWeb.session import SessionFolder, safe_file_name


@pytest.fixture
def session(tmp_path):
    folder = SessionFolder(max_upload_mb=1, parent=str(tmp_path))
    yield folder
    folder.close()


def test_each_session_has_its_own_folder_readable_by_its_owner_only(tmp_path):
    first, second = SessionFolder(parent=str(tmp_path)), SessionFolder(parent=str(tmp_path))
    try:
        assert first.root != second.root
        for folder in (first.root, second.root, first.case_dir):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    finally:
        first.close()
        second.close()
    assert not first.root.exists() and not second.root.exists()


@pytest.mark.parametrize(
    ("browser_name", "stored_name"),
    [
        ("../../etc/cron.d/evil.nrrd", "evil.nrrd"),
        ("C:\\Users\\x\\case 1.nii.gz", "case_1.nii.gz"),
        ("/abs/path/.hidden.mha", "hidden.mha"),
    ],
)
def test_upload_is_written_inside_the_case_folder_under_its_base_name(session, browser_name, stored_name):
    path = session.save_upload(browser_name, b"data")
    assert path == session.case_dir / stored_name
    assert path.read_bytes() == b"data"


def test_upload_over_the_limit_is_refused_and_nothing_is_written(session):
    with pytest.raises(BadInputError, match=r"over the 1 MB limit.*big\.nrrd"):
        session.save_upload("big.nrrd", b"x" * (1024 * 1024 + 1))
    assert list(session.root.rglob("*.nrrd")) == []


def test_upload_that_is_not_an_image_format_is_refused(session):
    with pytest.raises(BadInputError, match="notes.txt"):
        session.save_upload("notes.txt", b"hello")


def test_download_outside_the_case_folder_is_refused(session, tmp_path):
    (tmp_path / "secret.html").write_text("secret")
    (session.case_dir / "outputs").mkdir()
    (session.case_dir / "outputs" / "report.html").write_text("<html>")
    assert session.resolve("outputs/report.html").read_text() == "<html>"
    for name in ("../../secret.html", str(tmp_path / "secret.html"), "outputs/../../../secret.html"):
        with pytest.raises(BadInputError, match="No such file in this session"):
            session.resolve(name)


def test_a_new_case_forgets_the_previous_case_files(session):
    old = session.save_upload("a.nrrd", b"1")
    session.new_case()
    assert not old.exists()
    assert list(session.case_dir.iterdir()) == []


def test_safe_file_name_never_keeps_a_directory_part():
    assert safe_file_name("..") == "upload"
    assert safe_file_name("a/b/../c.nrrd") == "c.nrrd"
