"""The radiologist's steps on scene nodes, shared by the Slicer module and the web app.

Each step converts nodes to images once (``volumes``/``segments``), calls the one implementation
in ``BreastSubtypeLib`` and turns the result back into editable nodes filed under the input's study.
Heavy parts of the Lib (scipy, torch) are imported inside the steps, after dependencies exist.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from BreastSubtypeLib.rois.labels import CORE, RIM
from BreastSubtypeMRML import hierarchy, segments
from BreastSubtypeMRML.volumes import sitk_from_volume_node

RESULTS_FOLDER = "BreastSubtype {volume}"


def results_folder(scene, volume_node) -> int:
    return hierarchy.results_folder(scene, volume_node, RESULTS_FOLDER.format(volume=volume_node.GetName()))


def generate_rois(
    scene,
    volume_node,
    tumour_segmentation_node,
    tumour_segment_id: str,
    rim_mm: float,
    peri_mm: float,
    roi_segmentation_node=None,
):
    """Core/rim/peritumoral segments from the tumour segment; returns ``(node, RoiResult)``.

    An existing ROI segmentation node is refilled (the user regenerates after editing the tumour).
    """
    from BreastSubtypeLib.rois.regions import compute_rois

    image = sitk_from_volume_node(volume_node)
    tumour = segments.tumour_mask_from_segment(
        scene, tumour_segmentation_node, tumour_segment_id, volume_node
    )
    result = compute_rois(image, tumour, rim_mm, peri_mm, mask_source=f"segment '{tumour_segment_id}'")
    if roi_segmentation_node is None:
        roi_segmentation_node = segments.new_segmentation_node(
            scene, f"{volume_node.GetName()} ROIs", volume_node
        )
    segments.set_roi_segments(scene, roi_segmentation_node, result.labelmap)
    roi_segmentation_node.SetAttribute("BreastSubtype.rim_mm", f"{result.rim_mm_used:g}")
    roi_segmentation_node.SetAttribute("BreastSubtype.peri_mm", f"{peri_mm:g}")
    hierarchy.place_in_folder(scene, results_folder(scene, volume_node), roi_segmentation_node)
    return roi_segmentation_node, result


def one_click_tumour(
    scene,
    volume_node,
    seed_ras: Sequence[float],
    box_ras: tuple[Sequence[float], Sequence[float]] | None = None,
    segmentation_node=None,
):
    """The tumour segment grown from one click (and optional box, RAS min/max corners).

    Returns ``(segmentation node, segment id, OneClickResult)``; the segment stays editable.
    """
    from BreastSubtypeLib.rois.one_click import segment_tumour_from_seed

    image = sitk_from_volume_node(volume_node)
    result = segment_tumour_from_seed(image, tuple(seed_ras), seed_space="RAS", box=box_ras)
    if segmentation_node is None:
        segmentation_node = segments.new_segmentation_node(
            scene, f"{volume_node.GetName()} tumour", volume_node
        )
    segment_id = segments.set_tumour_segment(scene, segmentation_node, result.mask)
    hierarchy.place_in_folder(scene, results_folder(scene, volume_node), segmentation_node)
    return segmentation_node, segment_id, result


@dataclass(frozen=True)
class PredictionInputs:
    """Files for the background ``predict`` run: the image and either reviewed ROIs or a tumour mask."""

    image: Path
    rois: Path | None = None  # core/rim/peritumoral labelmap, used by the model exactly as edited
    mask: Path | None = None  # tumour mask: the CLI computes the regions from it

    def arguments(self) -> list[str]:
        if self.rois is not None:
            return ["--image", str(self.image), "--rois", str(self.rois)]
        return ["--image", str(self.image), "--mask", str(self.mask)]


def export_prediction_inputs(
    scene, volume_node, segmentation_node, folder: str | os.PathLike
) -> PredictionInputs:
    """Write ``image.nrrd`` and the regions the model must see (input geometry) for the background run.

    With core/rim/peritumoral segments (as generated, then perhaps edited) they are written as
    ``rois.nrrd`` and passed with ``--rois``, so every edit reaches the model; a segmentation with
    only a ``tumour`` segment is written as ``tumour.nrrd`` and the CLI computes the regions.
    """
    from BreastSubtypeLib.errors import BadInputError
    from BreastSubtypeLib.imaging.io import write_image

    folder = Path(folder)
    segmentation = segmentation_node.GetSegmentation()
    present = {
        segment_id: label
        for label, segment_id in segments.ROI_SEGMENT_IDS.items()
        if segmentation.GetSegment(segment_id) is not None
    }
    image_path = Path(write_image(sitk_from_volume_node(volume_node), folder / "image.nrrd"))
    if present.keys() & {segments.ROI_SEGMENT_IDS[CORE], segments.ROI_SEGMENT_IDS[RIM]}:
        labels = segments.labelmap_from_segments(scene, segmentation_node, present, volume_node)
        return PredictionInputs(image_path, rois=Path(write_image(labels, folder / "rois.nrrd")))
    if segmentation.GetSegment(segments.TUMOUR_SEGMENT_ID) is not None:
        tumour = segments.tumour_mask_from_segment(
            scene, segmentation_node, segments.TUMOUR_SEGMENT_ID, volume_node
        )
        return PredictionInputs(image_path, mask=Path(write_image(tumour, folder / "tumour.nrrd")))
    raise BadInputError(
        f"The segmentation '{segmentation_node.GetName()}' has neither core/rim/peritumoral segments "
        "nor a tumour segment; generate the ROIs first."
    )


def prediction_command(
    inputs: PredictionInputs,
    out_dir: str | os.PathLike,
    *,
    model: str = "demo",
    device: str = "auto",
    rim_mm: float | None = None,
    peri_mm: float | None = None,
    python: str | None = None,
) -> list[str]:
    """The command line of the background ``predict`` run (PythonSlicer in Slicer).

    ``rim_mm``/``peri_mm`` matter only for a tumour mask: reviewed ROIs already fix the regions.
    """
    command = [python or sys.executable, "-m", "BreastSubtypeLib.cli.main", "predict", *inputs.arguments()]
    command += ["--out", str(out_dir), "--model", str(model), "--device", str(device), "--progress-json"]
    if inputs.rois is None and rim_mm is not None:
        command += ["--rim-mm", f"{rim_mm:g}"]
    if inputs.rois is None and peri_mm is not None:
        command += ["--peri-mm", f"{peri_mm:g}"]
    return command
