"""Images with their physical geometry: reading, validation, mask alignment, coordinates.

No Slicer, no Qt, no torch: the CLI, the Slicer module and training all start here.
"""

from BreastSubtypeLib.imaging.alignment import align_mask_to_image
from BreastSubtypeLib.imaging.geometry import (
    bounding_box_index,
    lps_to_ras,
    physical_to_continuous_index,
    ras_to_lps,
)
from BreastSubtypeLib.imaging.io import list_dicom_series, read_image, write_image
from BreastSubtypeLib.imaging.validation import validate_image, validate_mask

__all__ = [
    "align_mask_to_image",
    "bounding_box_index",
    "list_dicom_series",
    "lps_to_ras",
    "physical_to_continuous_index",
    "ras_to_lps",
    "read_image",
    "validate_image",
    "validate_mask",
    "write_image",
]
