"""THE case pipeline: what every front end and training do to one case before the network sees it.

    read → validate → align → ROIs (computed from a tumour mask, or a reviewed labelmap)
         → lesion checks → model input

``predict`` (and through it the CLI, cohorts, the Slicer module and the web app), the training
cache, evaluation and the radiomics baseline all call these functions, so a case that inference
refuses is refused by training too, with the same sentence, and both compute the same numbers.

>>> case = read_case("image.nrrd", "tumour.nrrd")                     # doctest: +SKIP
>>> prepared = prepare_case(case, PreprocessingConfig())              # doctest: +SKIP
>>> prepared.roi.volumes_ml["tumour"], prepared.model_input.array.shape  # doctest: +SKIP
(2.1, (4, 64, 64, 64))
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.imaging.alignment import align_mask_to_image
from BreastSubtypeLib.imaging.io import read_image
from BreastSubtypeLib.imaging.validation import validate_image, validate_mask
from BreastSubtypeLib.model.config import PreprocessingConfig
from BreastSubtypeLib.preprocessing.crop import ModelInput, prepare_model_input
from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL, RIM, ROI_NAMES
from BreastSubtypeLib.rois.regions import MIN_TUMOUR_VOLUME_ML, RoiResult, compute_rois


@dataclass
class CaseInput:
    """One case as the user gave it: the image and EITHER a tumour mask OR reviewed regions.

    ``rois`` is a labelmap (1 core, 2 rim, 3 peritumoral, e.g. edited in Slicer) used exactly as
    given; ``rim_mm``/``peri_mm`` override the model's widths when regions are computed from the
    mask. The ``*_source`` names (paths, or e.g. "the Slicer volume") appear in every error message.
    """

    image: sitk.Image
    tumour_mask: sitk.Image | None = None
    rois: sitk.Image | None = None
    rim_mm: float | None = None
    peri_mm: float | None = None
    image_source: str = "image in memory"
    mask_source: str = "mask in memory"
    rois_source: str = "ROI labelmap in memory"


@dataclass
class CheckedCase:
    """A case past validation: the image checked, the mask (or the reviewed regions) on its grid."""

    case: CaseInput
    tumour_mask: sitk.Image | None  # uint8 on the image grid; None when regions were given
    given_rois: RoiResult | None

    @property
    def image(self) -> sitk.Image:
        return self.case.image

    @property
    def regions_source(self) -> str:
        """The file the tumour comes from (the mask, or the reviewed labelmap)."""
        return self.case.mask_source if self.given_rois is None else self.case.rois_source


@dataclass
class PreparedCase:
    """A case ready for the network: its image, its regions on the image grid and the model input."""

    image: sitk.Image
    roi: RoiResult
    model_input: ModelInput


def read_case(
    image_path: str | os.PathLike,
    mask_path: str | os.PathLike | None = None,
    *,
    rois_path: str | os.PathLike | None = None,
    rim_mm: float | None = None,
    peri_mm: float | None = None,
) -> CaseInput:
    """The files of one case, read with their geometry (NIfTI, NRRD, MHA or a DICOM series folder)."""
    return CaseInput(
        image=read_image(image_path, what="image"),
        tumour_mask=None if mask_path is None else read_image(mask_path, what="mask"),
        rois=None if rois_path is None else read_image(rois_path, what="ROI labelmap"),
        rim_mm=rim_mm,
        peri_mm=peri_mm,
        image_source=str(image_path),
        mask_source=str(mask_path),
        rois_source=str(rois_path),
    )


def check_case(case: CaseInput) -> CheckedCase:
    """Validate the image and put the mask (or the reviewed regions) on its grid; nothing slow yet."""
    if (case.tumour_mask is None) == (case.rois is None):
        raise BadInputError(
            "Give either a tumour mask or a core/rim/peritumoral labelmap, not both or neither."
        )
    if case.rois is not None and (case.rim_mm is not None or case.peri_mm is not None):
        raise BadInputError(
            f"The rim and peritumoral widths apply only when the regions are computed from a tumour mask; "
            f"the labelmap {case.rois_source} already defines them."
        )
    validate_image(case.image, case.image_source)
    if case.rois is None:
        mask = align_mask_to_image(case.tumour_mask, case.image, case.mask_source)
        return CheckedCase(case, mask, None)
    return CheckedCase(case, None, roi_result_from_labelmap(case.rois, case.image, case.rois_source))


def case_rois(checked: CheckedCase, config: PreprocessingConfig) -> RoiResult:
    """Core, rim and peritumoral regions (at the case's widths, else the config's), lesion checked."""
    if checked.given_rois is not None:
        roi = checked.given_rois
    else:
        case = checked.case
        roi = compute_rois(
            case.image,
            checked.tumour_mask,
            rim_mm=float(config.rim_mm if case.rim_mm is None else case.rim_mm),
            peri_mm=float(config.peri_mm if case.peri_mm is None else case.peri_mm),
            mask_source=case.mask_source,
        )
    check_lesion_size(roi, checked.regions_source)
    return roi


def case_model_input(checked: CheckedCase, roi: RoiResult, config: PreprocessingConfig) -> ModelInput:
    """The network's input crop of a checked case and its regions."""
    return prepare_model_input(checked.image, roi.labelmap, config, source=checked.case.image_source)


def prepare_case(case: CaseInput | CheckedCase, config: PreprocessingConfig | None = None) -> PreparedCase:
    """Every step at once: validate, align, ROIs, lesion checks, model input (what training caches)."""
    config = config or PreprocessingConfig()
    checked = case if isinstance(case, CheckedCase) else check_case(case)
    roi = case_rois(checked, config)
    return PreparedCase(checked.image, roi, case_model_input(checked, roi, config))


def roi_result_from_labelmap(labelmap: sitk.Image, image: sitk.Image, source: str) -> RoiResult:
    """A reviewed core/rim/peritumoral labelmap as a ``RoiResult`` on ``image``'s grid, voxels kept.

    Checked and aligned by the same functions as a tumour mask (``validate_mask``,
    ``align_mask_to_image``), one label at a time: nearest-neighbour resampling of each label's
    voxels is exactly the resampled labelmap, and labels never blend.
    """
    validate_mask(labelmap, source, binary=False)  # 3-D, sane geometry, whole numbers, not empty
    values = sitk.GetArrayViewFromImage(labelmap)
    highest = float(values.max())
    if highest > PERITUMORAL:
        raise BadInputError(
            f"The ROI labelmap {source} holds the label {highest:g}; expected 1 core, 2 rim, 3 peritumoral."
        )
    present = [label for label in (CORE, RIM, PERITUMORAL) if (values == label).any()]
    if CORE not in present and RIM not in present:
        raise BadInputError(f"The ROI labelmap {source} has no tumour (labels 1 core, 2 rim).")
    labels = np.zeros(tuple(reversed(image.GetSize())), np.uint8)
    for label in present:
        on_grid = align_mask_to_image(sitk.Equal(labelmap, label), image, source)
        labels[sitk.GetArrayViewFromImage(on_grid) > 0] = label
    result = sitk.GetImageFromArray(labels)
    result.CopyInformation(image)

    voxel_ml = float(np.prod(image.GetSpacing())) / 1000.0
    counts = np.bincount(labels.ravel(), minlength=PERITUMORAL + 1)
    volumes_ml = {ROI_NAMES[label]: float(counts[label] * voxel_ml) for label in (CORE, RIM, PERITUMORAL)}
    volumes_ml["tumour"] = volumes_ml["core"] + volumes_ml["rim"]
    # The widths that drew these regions are unknown once a radiologist has edited them.
    return RoiResult(result, volumes_ml, rim_mm_used=float("nan"))


def check_lesion_size(roi: RoiResult, source: str) -> None:
    """A lesion of a few voxels has no core, rim or texture to read: refuse it rather than guess."""
    tumour_ml = float(roi.volumes_ml.get("tumour", roi.volumes_ml["core"] + roi.volumes_ml["rim"]))
    if tumour_ml < MIN_TUMOUR_VOLUME_ML:
        raise BadInputError(
            f"The tumour in the mask {source} is only {tumour_ml * 1000:.1f} mm³ "
            f"(at least {MIN_TUMOUR_VOLUME_ML * 1000:.0f} mm³ is needed); it is too small to characterise."
        )
