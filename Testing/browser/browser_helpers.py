"""Pixel measurements on real browser screenshots."""

from __future__ import annotations

import io

import numpy as np


def rgb_pixels(locator) -> np.ndarray:
    """The element's pixels as an ``(rows, cols, 3)`` uint8 array, from a real screenshot."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("RGB"))
