"""A radiologist's whole visit in a real browser: demo case -> click the lesion -> Generate ROIs ->
Run -> results -> heatmap overlay in the slice view -> report download."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from browser_helpers import rgb_pixels

# The README's screenshot: refreshed only on request, so a test run leaves the work tree clean.
SCREENSHOT = Path(__file__).resolve().parents[2] / "Resources" / "Screenshots" / "web.png"
UPDATE_SCREENSHOT = os.environ.get("BREAST_SUBTYPE_UPDATE_SCREENSHOTS") == "1"


def _red_view(page):
    return page.locator(".remote-controlled-area").nth(0)


def _wait_for_render(page, before: np.ndarray | None = None, timeout_s: float = 20.0) -> np.ndarray:
    """The Red view's pixels once they stop changing (and differ from ``before`` when given)."""
    deadline = timeout_s * 1000
    waited = 0
    last = rgb_pixels(_red_view(page))
    while waited < deadline:
        page.wait_for_timeout(400)
        waited += 400
        current = rgb_pixels(_red_view(page))
        changed = (
            before is None
            or current.shape != before.shape
            or np.abs(current.astype(int) - before).mean() > 0.5
        )
        if changed and np.array_equal(current, last):
            return current
        last = current
    return last


def _wait_step(page, test_id: str, timeout_ms: float = 60_000):
    """Wait for a step's output; fail at once with the panel's error line if the step failed."""
    page.locator(f"[data-testid={test_id}], [data-testid=error]").first.wait_for(timeout=timeout_ms)
    if page.get_by_test_id("error").count():
        page.screenshot(path="/tmp/web-failure.png")
        raise AssertionError(f"step before '{test_id}' failed: {page.get_by_test_id('error').inner_text()}")
    return page.get_by_test_id(test_id)


def _inferno_tint_fraction(pixels: np.ndarray) -> float:
    """Share of pixels tinted by inferno over grey: every inferno colour but its white end has red
    well above green (purple lows, red-orange highs), which grey anatomy never has."""
    r, g = (pixels[..., c].astype(int) for c in range(2))
    return float(np.mean(r - g > 15))


def _inferno_fraction(pixels: np.ndarray) -> float:
    """Share of pixels in inferno's red-orange hues, blended over grey: red well above green and blue."""
    r, g, b = (pixels[..., c].astype(int) for c in range(3))
    return float(np.mean((r - g > 40) & (r - b > 20)))


def test_demo_case_to_report(page, tmp_path):
    page.get_by_test_id("load-demo").click()
    assert _wait_step(page, "case-name").inner_text() == "Demo phantom"
    _wait_for_render(page)

    # The demo opens centred on its lesion: one click at the centre of the axial view grows the tumour.
    page.get_by_test_id("place-point").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=message]').innerText.includes('Click the')"
    )
    box = _red_view(page).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    volume = _wait_step(page, "tumour-volume")
    tumour_ml = float(volume.inner_text().split(":")[1].split("mL")[0])
    assert 0.5 < tumour_ml < 5.0  # a 16 mm lesion is about 2.1 mL

    page.get_by_test_id("generate-rois").click()
    rois = _wait_step(page, "roi-table")
    names = [row.split("\t")[0] for row in rois.inner_text().splitlines()]
    assert {"core", "rim", "peritumoral"} <= set(names)
    before = _wait_for_render(page)

    page.get_by_test_id("run").click()
    page.get_by_test_id("progress").wait_for()
    _wait_step(page, "results", timeout_ms=120_000)
    table = page.get_by_test_id("result-table").inner_text()
    for finding in ("ER probability", "PR probability", "HER2 probability", "Ki-67 (%)", "Surrogate subtype"):
        assert finding in table
    assert "ROI weight" in table
    assert "Demonstration model" in page.get_by_test_id("demo-warning").inner_text()

    after = _wait_for_render(page, before)
    # The overlay covers a visible part of the axial view, tints it with inferno, and its hot spot
    # (attention is stretched over the crop) shows inferno's red-orange.
    changed = np.abs(after.astype(int) - before.astype(int)).sum(axis=-1) > 30
    assert changed.mean() > 0.02
    assert _inferno_tint_fraction(after[changed]) > 0.5
    assert _inferno_fraction(after[changed]) > 0.02  # the hot spot; its size depends on the model
    assert _inferno_tint_fraction(after) > _inferno_tint_fraction(before) + 0.02
    page.get_by_test_id("result-table").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOT if UPDATE_SCREENSHOT else tmp_path / "web.png"))

    with page.expect_download() as download_info:
        page.get_by_test_id("download-report").click()
    download = download_info.value
    assert download.suggested_filename == "report.html"
    report = tmp_path / "report.html"
    download.save_as(report)
    text = report.read_text(encoding="utf-8")
    assert text.lstrip().lower().startswith("<!doctype html")
    assert "HER2" in text and "Ki-67" in text
