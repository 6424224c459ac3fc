"""Perceptually uniform colour maps built from their data, shared by the PNG overlays, the Slicer
module's colour tables and the web app, so a heatmap looks the same everywhere and never depends on
a colour table being present in the host application.

Control points are 17 evenly spaced samples (every 16th of 256 entries) of matplotlib's inferno and
viridis (CC0, van der Walt & Smith); linear interpolation between them stays within one 8-bit step.

>>> lookup_table("inferno")[[0, -1]].tolist()
[[0, 0, 4], [252, 255, 164]]
"""

from __future__ import annotations

import numpy as np

CONTROL_POINTS_RGB: dict[str, tuple[tuple[int, int, int], ...]] = {
    "inferno": (
        (0, 0, 4), (11, 7, 36), (33, 12, 74), (61, 9, 101), (87, 16, 110), (113, 25, 110),
        (138, 34, 106), (163, 44, 97), (188, 55, 84), (208, 69, 69), (227, 89, 51), (241, 113, 31),
        (249, 140, 10), (252, 170, 15), (249, 201, 50), (242, 232, 101), (252, 255, 164),
    ),
    "viridis": (
        (68, 1, 84), (72, 24, 106), (71, 45, 123), (66, 64, 134), (59, 82, 139), (51, 99, 141),
        (44, 114, 142), (38, 130, 142), (33, 145, 140), (31, 159, 136), (39, 173, 129), (61, 188, 116),
        (92, 200, 99), (129, 211, 77), (170, 220, 50), (213, 226, 26), (253, 231, 37),
    ),
}  # fmt: skip
COLORMAP_NAMES = tuple(CONTROL_POINTS_RGB)


def lookup_table(name: str = "inferno", entries: int = 256) -> np.ndarray:
    """``(entries, 3)`` uint8 RGB table, entry 0 for value 0 and the last for value 1."""
    if name not in CONTROL_POINTS_RGB:
        raise ValueError(f"Unknown colour map {name!r}; expected one of {', '.join(COLORMAP_NAMES)}.")
    points = np.asarray(CONTROL_POINTS_RGB[name], dtype=np.float64)
    where = np.linspace(0.0, 1.0, len(points))
    positions = np.linspace(0.0, 1.0, entries)
    table = np.stack([np.interp(positions, where, points[:, channel]) for channel in range(3)], axis=1)
    return np.clip(np.round(table), 0, 255).astype(np.uint8)


def apply_colormap(values: np.ndarray, name: str = "inferno") -> np.ndarray:
    """Map values in [0, 1] (clipped; NaN → 0) to RGB uint8, shape ``values.shape + (3,)``."""
    table = lookup_table(name)
    scaled = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0)
    index = np.clip(np.rint(scaled * (len(table) - 1)), 0, len(table) - 1).astype(np.intp)
    return table[index]
