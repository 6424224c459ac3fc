"""The web app's per-session folder and upload checks: private, size-limited, no path traversal
either way, swept after a crash; uploads refused from their header when they point at other files or
would not fit the memory budget."""

from __future__ import annotations

import gzip
import os
import signal
import stat
import struct
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeWeb.session import SessionFolder, safe_file_name, sweep_dead_sessions
from BreastSubtypeWeb.uploads import check_upload


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
    staged = session.stage_upload(browser_name, b"data")
    path = session.adopt_staged(staged)
    assert path == session.case_dir / stored_name
    assert path.read_bytes() == b"data"


def test_upload_over_the_limit_is_refused_and_nothing_is_written(session):
    with pytest.raises(BadInputError, match=r"over the 1 MB limit.*big\.nrrd"):
        session.stage_upload("big.nrrd", b"x" * (1024 * 1024 + 1))
    assert list(session.root.rglob("*.nrrd")) == []


@pytest.mark.parametrize("name", ["notes.txt", "case.nhdr", "case.hdr", "case.img", "case.raw", "case.gipl"])
def test_upload_that_is_not_a_single_file_image_format_is_refused(session, name):
    with pytest.raises(BadInputError, match=name.replace(".", r"\.")):
        session.stage_upload(name, b"hello")


def test_a_staged_upload_leaves_the_current_case_until_adopted(session):
    current = session.adopt_staged(session.stage_upload("a.nrrd", b"1"))
    staged = session.stage_upload("b.nrrd", b"2")
    assert current.exists() and staged.parent != session.case_dir
    session.discard_staged()  # refused: the case is as it was
    assert current.read_bytes() == b"1" and not staged.exists()


def test_download_outside_the_case_folder_is_refused(session, tmp_path):
    (tmp_path / "secret.html").write_text("secret")
    (session.case_dir / "outputs").mkdir()
    (session.case_dir / "outputs" / "report.html").write_text("<html>")
    assert session.resolve("outputs/report.html").read_text(encoding="utf-8") == "<html>"
    for name in ("../../secret.html", str(tmp_path / "secret.html"), "outputs/../../../secret.html"):
        with pytest.raises(BadInputError, match="No such file in this session"):
            session.resolve(name)


def test_a_new_case_forgets_the_previous_case_files(session):
    old = session.adopt_staged(session.stage_upload("a.nrrd", b"1"))
    session.new_case()
    assert not old.exists()
    assert list(session.case_dir.iterdir()) == []


def test_safe_file_name_never_keeps_a_directory_part():
    assert safe_file_name("..") == "upload"
    assert safe_file_name("a/b/../c.nrrd") == "c.nrrd"


def test_a_killed_servers_folder_is_swept_at_the_next_start_and_a_live_one_is_not(tmp_path):
    code = (
        "import sys, time; from BreastSubtypeWeb.session import SessionFolder; "
        f"folder = SessionFolder(parent={str(tmp_path)!r}); print(folder.root, flush=True); time.sleep(60)"
    )
    killed = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    live = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        killed_root, live_root = (process.stdout.readline().strip() for process in (killed, live))
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        assert os.path.isdir(killed_root)  # SIGKILL: no clean-up ran
        folder = SessionFolder(parent=str(tmp_path))
        try:
            assert [str(p) for p in folder.swept] == [killed_root]
            assert not os.path.exists(killed_root) and os.path.isdir(live_root)
            assert sweep_dead_sessions(tmp_path) == []  # this one's own folder is locked too
        finally:
            folder.close()
    finally:
        for process in (killed, live):
            process.kill()
            process.wait(10)


# ---- upload headers -------------------------------------------------------------------------------

BUDGET = 64 * 2**20


def _image(size_xyz=(20, 18, 6)) -> sitk.Image:
    rng = np.random.default_rng(0)
    image = sitk.GetImageFromArray(rng.integers(0, 1000, size=size_xyz[::-1], dtype=np.int16))
    image.SetSpacing((0.7, 0.8, 1.5))
    return image


@pytest.mark.parametrize("suffix", [".nrrd", ".nii", ".nii.gz", ".mha"])
def test_single_file_images_pass_with_their_declared_size(tmp_path, suffix):
    path = tmp_path / f"case{suffix}"
    sitk.WriteImage(_image(), str(path), useCompression=suffix != ".mha")
    header = check_upload(path, BUDGET)
    assert header.size_ijk == (20, 18, 6) and header.components == 1 and header.bytes_per_component == 2


def test_a_metaimage_pointing_at_a_server_file_is_refused(tmp_path):
    path = tmp_path / "case.mhd"
    path.write_text(
        "ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementType = MET_UCHAR\n"
        "ElementDataFile = /etc/passwd\n"
    )
    with pytest.raises(
        BadInputError, match=r"case\.mhd points at another file.*ElementDataFile = /etc/passwd"
    ):
        check_upload(path, BUDGET)


def test_a_metaimage_with_local_data_passes(tmp_path):
    path = tmp_path / "case.mhd"
    path.write_bytes(
        b"ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementType = MET_UCHAR\n"
        b"ElementDataFile = LOCAL\n" + bytes(64)
    )
    assert check_upload(path, BUDGET).size_ijk == (4, 4, 4)


def test_a_detached_nrrd_header_is_refused(tmp_path):
    path = tmp_path / "case.nrrd"
    path.write_text(
        "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 4 4 4\nencoding: raw\ndata file: /etc/passwd\n"
    )
    with pytest.raises(BadInputError, match=r"case\.nrrd is a detached NRRD header"):
        check_upload(path, BUDGET)


def _nifti1(dims: tuple[int, ...], magic: bytes = b"n+1\0", bitpix: int = 16) -> bytes:
    header = bytearray(352)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, len(dims), *dims, *([1] * (7 - len(dims))))
    struct.pack_into("<hh", header, 70, 4, bitpix)
    struct.pack_into("<f", header, 108, 352.0)
    header[344:348] = magic
    return bytes(header)


def test_a_nifti_pair_header_is_refused(tmp_path):
    path = tmp_path / "case.nii"
    path.write_bytes(_nifti1((4, 4, 4), magic=b"ni1\0"))
    with pytest.raises(
        BadInputError, match=r"case\.nii is a NIfTI header whose voxels are in a separate \.img"
    ):
        check_upload(path, BUDGET)


def test_a_header_over_the_memory_budget_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.nii.gz"
    with gzip.open(path, "wb") as stream:
        stream.write(_nifti1((2000, 2000, 2000)))  # 8e9 voxels declared, none stored
    with pytest.raises(
        BadInputError, match=r"huge\.nii\.gz declares 8,000,000,000 voxels.*64 MB memory budget"
    ):
        check_upload(path, BUDGET)


def test_a_gzip_that_unpacks_beyond_its_header_is_stopped_early(tmp_path):
    path = tmp_path / "bomb.nii.gz"
    with gzip.open(path, "wb", compresslevel=9) as stream:
        stream.write(_nifti1((10, 10, 10)))
        for _ in range(8):
            stream.write(bytes(2**20))  # 8 MB of zeros where 2,000 bytes of voxels are declared
    with path.open("ab") as stream:
        stream.write(b"\x1f\x8b\x08\x00" + b"not deflate" * 100)  # a broken second member
    assert path.stat().st_size < 64 * 1024
    # Stopped as soon as it outgrew the header: it never reached the broken member further on.
    with pytest.raises(BadInputError, match=r"bomb\.nii\.gz unpacks to more than its NIfTI header declares"):
        check_upload(path, 2**30)
