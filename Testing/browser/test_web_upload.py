"""Uploading a volume from the browser: it becomes the case with its geometry; files that point at
other files of the server, or are too big, are refused with one line naming them, and the case that
was open stays open."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from playwright.sync_api import expect
from web_server import WebServer


def _write_volume(path, size=(40, 36, 12)):
    rng = np.random.default_rng(3)
    image = sitk.GetImageFromArray(rng.integers(0, 1000, size=size[::-1], dtype=np.int16))
    image.SetSpacing((0.7, 0.8, 1.5))
    image.SetOrigin((10.0, -20.0, 5.0))
    sitk.WriteImage(image, str(path))
    return path


def _upload(page, path):
    page.get_by_test_id("upload").locator("input[type=file]").set_input_files(str(path))


def _refusal(page, name: str) -> str:
    """The panel's error line once it names ``name`` (the server keeps one state for every page)."""
    error = page.get_by_test_id("error")
    expect(error).to_contain_text(name, timeout=30_000)
    return error.inner_text()


@pytest.fixture(scope="module")
def pointer_files(tmp_path_factory):
    """Headers that would make the server read /etc/passwd as voxels."""
    folder = tmp_path_factory.mktemp("pointers")
    mhd = folder / "pointer.mhd"
    mhd.write_text(
        "ObjectType = Image\nNDims = 3\nDimSize = 8 8 8\nElementType = MET_UCHAR\nElementDataFile = /etc/passwd\n"
    )
    nrrd = folder / "detached.nrrd"
    nrrd.write_text(
        "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 8 8 8\nencoding: raw\ndata file: /etc/passwd\n"
    )
    return {"mhd": mhd, "nrrd": nrrd}


def test_uploaded_volume_becomes_the_case(page, tmp_path):
    _upload(page, _write_volume(tmp_path / "patient 1.nrrd"))
    expect(page.get_by_test_id("case-name")).to_have_text("patient_1.nrrd")
    assert page.get_by_test_id("error").count() == 0


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("mhd", "pointer.mhd points at another file"), ("nrrd", "detached.nrrd is a detached NRRD header")],
)
def test_a_header_pointing_at_a_server_file_is_refused_and_the_case_stays(
    page, pointer_files, kind, expected
):
    page.get_by_test_id("load-demo").click()
    expect(page.get_by_test_id("case-name")).to_have_text("Demo phantom")
    _upload(page, pointer_files[kind])
    message = _refusal(page, pointer_files[kind].name)
    assert expected in message
    assert "/tmp" not in message  # no server folder in the message
    expect(page.get_by_test_id("case-name")).to_have_text("Demo phantom")


def test_upload_that_is_not_an_image_is_refused_in_one_line(page, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image")
    _upload(page, path)
    assert "Upload one image file" in _refusal(page, "notes.txt")
    names = page.get_by_test_id("case-name").all_inner_texts()
    assert "notes.txt" not in " ".join(names)


@pytest.fixture
def small_limit_server(tmp_path):
    server = WebServer(tmp_path / "server.log", extra_args=("--max-upload-mb", "0.01"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_oversize_upload_is_refused_with_its_name(browser, small_limit_server, tmp_path):
    path = _write_volume(tmp_path / "big.nrrd", size=(64, 64, 8))  # 64 KiB > 0.01 MB
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(small_limit_server.access_url)
        _upload(page, path)
        message = _refusal(page, "big.nrrd")
        assert "over the 0.01 MB limit of this server" in message and "big.nrrd" in message
        assert page.get_by_test_id("case-name").count() == 0
    finally:
        context.close()
