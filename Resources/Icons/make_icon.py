"""Draws the extension/module icon (128x128 PNG): a lesion's core, rim and peritumoral band in the
ROI colours over an MRI-grey breast outline. Rerun after changing the ROI colours:

    .venv/bin/python Resources/Icons/make_icon.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL, RIM, ROI_COLORS_RGB

ROOT = Path(__file__).resolve().parents[2]
TARGETS = (
    ROOT / "Resources/Icons/BreastSubtype.png",
    ROOT / "BreastSubtype/Resources/Icons/BreastSubtype.png",
)


def draw(size: int = 128) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / (size - 1) * 2.0 - 1.0
    rgba = np.zeros((size, size, 4))
    breast = (x / 0.95) ** 2 + ((y - 0.35) / 1.25) ** 2 < 1.0  # half-ellipse, chest wall at the top
    breast &= y > -0.55
    rgba[breast] = (0.42, 0.42, 0.45, 1.0)
    angle = np.arctan2(y - 0.2, x + 0.05)
    radius = np.hypot(x + 0.05, y - 0.2) * (1.0 + 0.12 * np.sin(5 * angle))  # lobulated margin
    for label, outer in ((PERITUMORAL, 0.55), (RIM, 0.38), (CORE, 0.22)):
        rgba[radius < outer] = (*ROI_COLORS_RGB[label], 1.0)
    return rgba


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = draw()
    for target in TARGETS:
        target.parent.mkdir(parents=True, exist_ok=True)
        plt.imsave(target, image)


if __name__ == "__main__":
    main()
