"""What the browser tests share: pixels of real screenshots, the views by name, waiting for a step."""

from __future__ import annotations

import io

import numpy as np
from playwright.sync_api import expect

# "Axial Primary" layout: Red (axial), 3-D, Green (coronal), Yellow (sagittal).
VIEW_INDEX = {"Red": 0, "3D": 1, "Green": 2, "Yellow": 3}


def rgb_pixels(locator) -> np.ndarray:
    """The element's pixels as an ``(rows, cols, 3)`` uint8 array, from a real screenshot."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB"))


def view(page, name: str):
    return page.locator(".remote-controlled-area").nth(VIEW_INDEX[name])


def wait_for_render(locator, before: np.ndarray | None = None, timeout_s: float = 20.0) -> np.ndarray:
    """The view's pixels once they stop changing (and differ from ``before`` when given)."""
    page = locator.page
    last = rgb_pixels(locator)
    for _ in range(int(timeout_s / 0.4)):
        page.wait_for_timeout(400)
        current = rgb_pixels(locator)
        changed = (
            before is None
            or current.shape != before.shape
            or np.abs(current.astype(int) - before).mean() > 0.5
        )
        if changed and np.array_equal(current, last):
            return current
        last = current
    return last


def saturation(pixels: np.ndarray) -> np.ndarray:
    """Per pixel max - min of R, G, B: 0 for grey anatomy, high for coloured outlines and maps."""
    pixels = pixels.astype(int)
    return pixels.max(axis=-1) - pixels.min(axis=-1)


def wait_step(page, test_id: str, timeout_ms: float = 60_000):
    """Wait for a step's output; fail at once with the panel's error line if the step failed."""
    page.locator(f"[data-testid={test_id}], [data-testid=error]").first.wait_for(timeout=timeout_ms)
    if page.get_by_test_id("error").count():
        raise AssertionError(f"step before '{test_id}' failed: {page.get_by_test_id('error').inner_text()}")
    return page.get_by_test_id(test_id)


def click_view_centre(page, name: str = "Red") -> None:
    box = view(page, name).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def load_demo(page) -> None:
    """Load the demo case and wait for this load (not a previous one) to be done."""
    name = page.get_by_test_id("case-name")
    before = name.get_attribute("data-case") if name.count() else "0"
    page.get_by_test_id("load-demo").click()
    expect(name).not_to_have_attribute("data-case", before or "0")
    expect(name).to_have_text("Demo phantom")


def load_demo_and_find_tumour(page, seed_ras: str | None = None) -> None:
    """Demo case, then the tumour from a click at the centre of the axial view (or a typed point)."""
    load_demo(page)
    if seed_ras is None:
        page.get_by_test_id("place-point").click()
        expect(page.get_by_test_id("message")).to_contain_text("Click the centre of the lesion")
        click_view_centre(page)
    else:
        page.get_by_test_id("seed-ras").locator("input").fill(seed_ras)
        page.get_by_test_id("find-tumour").click()
    wait_step(page, "tumour-volume")


def drag(page, start_xy, offset_xy, steps: int = 10) -> None:
    """A left-button drag in small moves, after a hover so the view knows where the pointer is."""
    x, y = start_xy
    page.mouse.move(x - 20, y - 20)
    page.mouse.move(x, y)
    page.wait_for_timeout(200)
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(x + offset_xy[0] * i / steps, y + offset_xy[1] * i / steps)
        page.wait_for_timeout(40)
    page.mouse.up()
