"""Uploading a volume from the browser: it lands in the session folder with its geometry; an
oversize file is refused in the browser with one line naming it."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from web_server import WebServer


def _write_volume(path, size=(40, 36, 12)):
    rng = np.random.default_rng(3)
    image = sitk.GetImageFromArray(rng.integers(0, 1000, size=size[::-1], dtype=np.int16))
    image.SetSpacing((0.7, 0.8, 1.5))
    image.SetOrigin((10.0, -20.0, 5.0))
    sitk.WriteImage(image, str(path))
    return path


def test_uploaded_volume_becomes_the_case(page, tmp_path):
    path = _write_volume(tmp_path / "patient 1.nrrd")
    page.get_by_test_id("upload").locator("input[type=file]").set_input_files(str(path))
    page.locator("[data-testid=case-name], [data-testid=error]").first.wait_for()
    assert page.get_by_test_id("error").count() == 0
    assert page.get_by_test_id("case-name").inner_text() == "patient_1.nrrd"


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
        page.goto(small_limit_server.url)
        page.get_by_test_id("upload").locator("input[type=file]").set_input_files(str(path))
        error = page.get_by_test_id("error")
        error.wait_for(timeout=30_000)
        assert "over the 0.01 MB limit of this server" in error.inner_text()
        assert "big.nrrd" in error.inner_text()
        assert page.get_by_test_id("case-name").count() == 0
    finally:
        context.close()


def test_upload_that_is_not_an_image_is_refused_in_one_line(page, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an image")
    page.get_by_test_id("upload").locator("input[type=file]").set_input_files(str(path))
    error = page.get_by_test_id("error")
    error.wait_for()
    assert "notes.txt" in error.inner_text()
    # A refused upload leaves the current case (if any) as it was.
    names = page.get_by_test_id("case-name").all_inner_texts()
    assert "notes.txt" not in " ".join(names)
