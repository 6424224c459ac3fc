"""Reading the views in a real browser: Slicer's views rendered offscreen, patient-direction letters,
slice numbers, window/level by drag and presets, views centred on a typed point, ROIs as outlines that
can be hidden, the lesion (not an opaque block) in 3-D, and errors in full."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from browser_helpers import (
    drag,
    load_demo,
    load_demo_and_find_tumour,
    rgb_pixels,
    saturation,
    view,
    wait_for_render,
    wait_step,
)
from playwright.sync_api import expect

from BreastSubtypeLib.phantom import generate_phantom
from BreastSubtypeWeb.workflow import DEMO_LESION_DIAMETER_MM, DEMO_SEED, DEMO_SIZE_IJK, DEMO_SPACING_MM


@pytest.fixture(scope="module")
def demo():
    return generate_phantom(
        DEMO_SEED,
        size_ijk=DEMO_SIZE_IJK,
        spacing_mm=DEMO_SPACING_MM,
        lesion_diameter_mm=DEMO_LESION_DIAMETER_MM,
        case_id="demo",
    )


def _middle(pixels: np.ndarray) -> np.ndarray:
    """The view without its edges (the gutter's buttons sit top left)."""
    rows, cols = pixels.shape[:2]
    return pixels[rows // 5 : rows * 9 // 10, cols // 5 : cols * 19 // 20]


def _background_only(pixels: np.ndarray) -> bool:
    """Slicer's 3-D background: a grey vertical gradient, nothing coloured, nothing bright."""
    middle = _middle(pixels)
    return saturation(middle).max() < 12 and middle.max() < 90


def test_views_render_with_letters_and_an_empty_3d_view(page):
    views = page.locator(".remote-controlled-area")
    assert views.count() == 4  # "Axial Primary": Red, 3-D, Green, Yellow
    load_demo(page)
    # Radiological convention, from each view's own geometry: patient right on the screen's left.
    expected = {
        "Red": ("R", "L", "A", "P"),
        "Green": ("R", "L", "S", "I"),
        "Yellow": ("A", "P", "S", "I"),
    }
    for name, (left, right, top, bottom) in expected.items():
        for edge, letter in zip(("left", "right", "top", "bottom"), (left, right, top, bottom)):
            expect(page.get_by_test_id(f"orientation-{name}-{edge}")).to_have_text(letter)
    # No volume rendering: the 3-D view stays Slicer's grey gradient until there is a lesion to show.
    three_d = wait_for_render(view(page, "3D"))
    rows = three_d.shape[0]
    assert three_d[rows // 10 : rows // 5].mean() > three_d[rows // 2 : rows // 2 + rows // 10].mean() + 5
    assert _background_only(three_d)


def test_window_level_by_drag_and_presets(page, demo):
    load_demo(page)
    readout = page.get_by_test_id("window-level-Red")
    expect(readout).to_contain_text("W ")
    auto = readout.inner_text()
    box = view(page, "Red").bounding_box()
    drag(page, (box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7), (150, -100))
    expect(readout).not_to_have_text(auto)
    # As a reader does, let go before choosing a preset: moves still on their way from a loaded
    # browser would otherwise land after the preset.
    _wait_until_steady(page, readout)
    values = sitk.GetArrayViewFromImage(demo.image)
    low, high = int(values.min()), int(values.max())
    page.get_by_test_id("window-full").click()
    expect(readout).to_have_text(f"W {high - low}  L {(high + low) / 2:.0f}")
    page.get_by_test_id("window-auto").click()
    expect(readout).to_have_text(auto)


def _wait_until_steady(page, locator, quiet_ms: int = 600, timeout_ms: int = 15_000) -> None:
    text, waited = locator.inner_text(), 0
    while waited < timeout_ms:
        page.wait_for_timeout(quiet_ms)
        waited += quiet_ms
        now = locator.inner_text()
        if now == text:
            return
        text = now
    raise AssertionError(f"the window/level readout kept changing after the drag: {text}")


def test_find_centres_every_view_on_the_typed_point(page, demo):
    r, a, s = (v + d for v, d in zip(demo.lesion_center_ras, (2.0, -1.0, 3.2)))  # inside the 16 mm lesion
    load_demo_and_find_tumour(page, f"{r:.1f}, {a:.1f}, {s:.1f}")
    # The slice number the point falls in, counted as a PACS does (from 1).
    k = round(demo.image.TransformPhysicalPointToContinuousIndex((-r, -a, s))[2]) + 1
    expect(page.get_by_test_id("slice-readout-Red")).to_have_text(f"Axial · slice {k} / 40 · S {s:.1f} mm")
    expect(page.get_by_test_id("slice-readout-Green")).to_contain_text(f"A {a:.1f} mm")
    expect(page.get_by_test_id("slice-readout-Yellow")).to_contain_text(f"R {r:.1f} mm")


def test_rois_are_outlines_that_can_be_hidden_and_surfaces_in_3d(page):
    load_demo_and_find_tumour(page)
    page.get_by_test_id("generate-rois").click()
    wait_step(page, "roi-table")
    red = wait_for_render(view(page, "Red"))
    rows, cols = red.shape[:2]
    # Around the lesion, away from the letters at the edges of the view.
    shown = (saturation(red[rows // 4 : rows * 3 // 4, cols // 4 : cols * 3 // 4]) > 60).mean()
    assert shown > 0.01  # the outlines are there
    # Outlines, not fills: inside the core (around the centre, away from the point's glyph) the anatomy
    # shows grey.
    ring = [(rows // 2 + dy, cols // 2 + dx) for dy, dx in ((0, 12), (0, -12), (12, 0), (-12, 0), (9, 9))]
    assert np.median([saturation(red[y : y + 1, x : x + 1])[0, 0] for y, x in ring]) < 30
    # The lesion and its regions in 3-D: coloured surfaces where there was only the grey background.
    three_d = wait_for_render(view(page, "3D"))
    assert (saturation(_middle(three_d)) > 60).mean() > 0.005
    page.get_by_test_id("outlines-visible").locator("input").click()
    hidden = wait_for_render(view(page, "Red"), red)
    assert (saturation(hidden[rows // 4 : rows * 3 // 4, cols // 4 : cols * 3 // 4]) > 60).mean() < shown / 5
    page.get_by_test_id("outlines-visible").locator("input").click()


def test_an_empty_rim_width_is_an_error_in_full_not_a_traceback(page):
    load_demo(page)
    page.get_by_test_id("rim-mm").locator("input").fill("")
    page.get_by_test_id("generate-rois").click()
    error = page.get_by_test_id("error")
    expect(error).to_contain_text("The rim width must be a positive number of mm")
    assert "ValueError" not in error.inner_text()
    # All of it can be read: nothing clipped by the panel.
    assert error.evaluate("e => e.scrollWidth <= e.clientWidth && e.scrollHeight <= e.clientHeight + 1")
    page.get_by_test_id("rim-mm").locator("input").fill("3")


def test_pixels_come_from_a_real_render(page):
    # The slice views carry the demo's anatomy: grey levels with structure, not a blank image.
    load_demo(page)
    red = wait_for_render(view(page, "Red"))
    assert red.std() > 20 and np.median(saturation(red)) < 10
    assert rgb_pixels(view(page, "Green")).std() > 20
