"""The app opens in a real browser with Slicer's slice views and 3-D view rendered offscreen."""

from __future__ import annotations

from browser_helpers import rgb_pixels


def test_page_shows_three_slice_views_and_a_rendered_3d_view(page):
    views = page.locator(".remote-controlled-area")
    assert views.count() == 4  # "Axial Primary": Red, 3-D, Green, Yellow
    page.wait_for_function(
        "() => [...document.querySelectorAll('.remote-controlled-area img')].every(i => i.naturalWidth > 0)"
    )
    three_d = rgb_pixels(views.nth(1)).astype(int)
    # The 3-D view's background is Slicer's vertical gradient (#3c3c3c top to #1f2020 bottom), so a
    # real VTK render reached the browser: grey near the top, darker further down.
    rows = three_d.shape[0]
    top = three_d[rows // 10 : rows // 5].mean()
    middle = three_d[rows // 2 : rows // 2 + rows // 10].mean()
    assert 40 < top < 70
    assert top > middle + 5
