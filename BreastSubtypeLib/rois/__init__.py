"""Tumour regions in millimetres: core, rim and peritumoral band (SPEC §3), and the one-click tumour."""

from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL, RIM, ROI_COLORS_RGB, ROI_NAMES

__all__ = ["CORE", "PERITUMORAL", "RIM", "ROI_COLORS_RGB", "ROI_NAMES"]
