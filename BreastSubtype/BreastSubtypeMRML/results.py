"""A case output folder (``breast-subtype predict --out DIR``) -> nodes in the scene.

Reads ``prediction.json``, ``rois.nrrd`` and the heatmaps (``attention.nrrd``,
``attention_scale{i}.nrrd``, ``gradcam_{task}.nrrd``) and places a results table, a margin-evidence
table (when the prediction has evidence), the ROI segmentation and one heatmap volume per map in a
folder under the input volume's study.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.inference.outputs import map_value_scale, map_values
from BreastSubtypeMRML import heatmaps, hierarchy, segments, tables
from BreastSubtypeMRML.io import read_image

TASK_TITLES = {"er": "ER", "pr": "PR", "her2": "HER2", "ki67": "Ki-67"}
_SCALE = re.compile(r"attention_scale(\d+)\.nrrd$")
_GRADCAM = re.compile(r"gradcam_(er|pr|her2|ki67)\.nrrd$")


def heatmap_files(out_dir: str | os.PathLike) -> dict[str, Path]:
    """``{map title: file}`` in display order: fused attention, per scale, per task."""
    out_dir = Path(out_dir)
    found: dict[str, Path] = {}
    if (out_dir / "attention.nrrd").is_file():
        found["Attention (fused)"] = out_dir / "attention.nrrd"
    scales = sorted((int(m.group(1)), p) for p in out_dir.iterdir() if (m := _SCALE.match(p.name)))
    for index, path in scales:
        found[f"Attention scale {index}"] = path
    for task, title in TASK_TITLES.items():
        path = out_dir / f"gradcam_{task}.nrrd"
        if path.is_file():
            found[f"Grad-CAM {title}"] = path
    return found


def read_prediction(out_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(out_dir) / "prediction.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"The prediction output {path} does not exist.") from None
    except json.JSONDecodeError as exc:
        raise BadInputError(f"The prediction output {path} is not valid JSON ({exc.msg}).") from None


@dataclass
class CaseNodes:
    """What :func:`import_case_outputs` added, for the widget (or web app) to show."""

    prediction: dict[str, Any]
    folder_item: int
    table_node: Any
    roi_segmentation_node: Any | None
    heatmap_nodes: dict[str, Any] = field(default_factory=dict)
    evidence_table_node: Any | None = None  # each call's strongest margin numbers (tables.evidence_rows)


def import_case_outputs(
    scene,
    out_dir: str | os.PathLike,
    input_volume_node,
    *,
    folder_name: str | None = None,
    roi_segmentation_node=None,
    threshold_fraction: float = 0.2,
    colormap: str = "inferno",
) -> CaseNodes:
    """Load a case's outputs on the input's grid and file them under the input's study.

    ``roi_segmentation_node``: the ROI segments the user reviewed; when given, the ROI file is not
    loaded again (the model ran on exactly those voxels).
    """
    out_dir = Path(out_dir)
    prediction = read_prediction(out_dir)
    base = input_volume_node.GetName()
    folder = hierarchy.results_folder(scene, input_volume_node, folder_name or f"BreastSubtype {base}")
    table = tables.add_results_table(scene, prediction, f"{base} subtype results")
    evidence_table = tables.add_evidence_table(scene, prediction, f"{base} margin profile evidence")
    if roi_segmentation_node is None and (out_dir / "rois.nrrd").is_file():
        roi_segmentation_node = segments.add_roi_segmentation(
            scene, read_image(out_dir / "rois.nrrd", what="ROI labelmap"), input_volume_node, f"{base} ROIs"
        )
    value_scale = map_value_scale(prediction)  # 8-bit map files: value = stored x value_scale
    heatmap_nodes = {
        title: heatmaps.add_heatmap_volume(
            scene,
            map_values(read_image(path, what="heatmap"), value_scale),
            f"{base} {title}",
            threshold_fraction=threshold_fraction,
            colormap=colormap,
        )
        for title, path in heatmap_files(out_dir).items()
    }
    hierarchy.place_in_folder(
        scene, folder, table, evidence_table, roi_segmentation_node, *heatmap_nodes.values()
    )
    return CaseNodes(prediction, folder, table, roi_segmentation_node, heatmap_nodes, evidence_table)
