"""Renders docs pictures from the real MRML path (slicer-core, no Slicer GUI): a phantom loaded as a
volume node, its tumour segment, the generated core/rim/peritumoral segments exported back, and the
heatmap colour table node. Rerun:  .venv/bin/python Resources/Screenshots/make_workflow_png.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
import slicer

from BreastSubtypeLib.phantom import generate_phantom
from BreastSubtypeLib.rois.labels import ROI_COLORS_RGB, ROI_NAMES
from BreastSubtypeMRML import heatmaps, pipeline, segments, volumes

OUT = Path(__file__).resolve().parent / "workflow.png"


def headless_scene():
    scene = slicer.vtkMRMLScene()
    app = slicer.vtkSlicerApplicationLogic()
    app.SetMRMLScene(scene)
    app.GetColorLogic().SetMRMLScene(scene)
    app.GetColorLogic().AddDefaultColorNodes()
    for name, logic in (
        ("Volumes", slicer.vtkSlicerVolumesLogic()),
        ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic()),
        ("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic()),
    ):
        logic.SetMRMLScene(scene)
        logic.SetMRMLApplicationLogic(app)
        app.SetModuleLogic(name, logic)
    return scene


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scene = headless_scene()
    case = generate_phantom(1, size_ijk=(128, 128, 48))
    volume = volumes.volume_node_from_sitk(scene, case.image, "Demo phantom 1")
    tumour = segments.new_segmentation_node(scene, "tumour", volume)
    segment_id = segments.set_tumour_segment(scene, tumour, case.tumour_mask)
    rois, _ = pipeline.generate_rois(scene, volume, tumour, segment_id, 3.0, 5.0)
    labels = sitk.GetArrayFromImage(segments.roi_labelmap_from_segmentation(scene, rois, volume))
    image = volumes.array_from_volume_node(volume)
    k = int(np.argmax((labels > 0).sum(axis=(1, 2))))
    sx, sy = case.image.GetSpacing()[:2]
    extent = (0, image.shape[2] * sx, image.shape[1] * sy, 0)

    figure, axes = plt.subplots(1, 2, figsize=(9, 4.6), gridspec_kw={"width_ratios": [3, 1]})
    axes[0].imshow(image[k], cmap="gray", extent=extent)
    overlay = np.zeros((*labels[k].shape, 4))
    for label, rgb in ROI_COLORS_RGB.items():
        overlay[labels[k] == label] = (*rgb, 0.55)
    axes[0].imshow(overlay, extent=extent)
    axes[0].set_title("ROI segments (core, rim 3 mm, peritumoral 5 mm)")
    axes[0].set_xlabel("mm")
    handles = [plt.Rectangle((0, 0), 1, 1, color=ROI_COLORS_RGB[label]) for label in ROI_NAMES]
    axes[0].legend(handles, list(ROI_NAMES.values()), loc="lower right")
    colour_node = heatmaps.perceptual_color_node(scene, "inferno")
    table = np.zeros((256, 3))
    for index in range(256):
        rgba = [0.0] * 4
        colour_node.GetColor(index, rgba)
        table[index] = rgba[:3]
    axes[1].imshow(np.repeat(table[::-1, None, :], 16, axis=1), aspect="auto", extent=(0, 1, 0, 1))
    axes[1].set_title("Heatmap colour table\n(BreastSubtype inferno)")
    axes[1].set_xticks([])
    axes[1].set_ylabel("fraction of map range")
    figure.tight_layout()
    figure.savefig(OUT, dpi=90)


if __name__ == "__main__":
    main()
