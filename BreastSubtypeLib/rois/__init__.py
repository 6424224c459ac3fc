"""Tumour regions in millimetres: core, rim and peritumoral band (SPEC §3), and the one-click tumour."""

from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL, RIM, ROI_COLORS_RGB, ROI_NAMES
from BreastSubtypeLib.rois.regions import RoiResult, check_widths, compute_rois

__all__ = [
    "CORE",
    "PERITUMORAL",
    "RIM",
    "ROI_COLORS_RGB",
    "ROI_NAMES",
    "RoiResult",
    "check_widths",
    "compute_rois",
]
