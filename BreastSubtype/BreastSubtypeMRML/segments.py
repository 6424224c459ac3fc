"""Segmentation nodes: the tumour and the core/rim/peritumoral ROIs as editable segments.

Segment IDs are stable (``tumour``, ``core``, ``rim``, ``peritumoral``) so the module, the web app
and tests find them again after the user edits or renames them. Each segment carries a DICOM
terminology entry (SNOMED CT codes; the ROI band as a private ``99BRSUB`` type modifier, since
SNOMED has no code for a peritumoral band) and a distinct colour from ``BreastSubtypeLib.rois.labels``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import SimpleITK as sitk
import slicer
import vtk

from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL, RIM, ROI_COLORS_RGB, ROI_NAMES
from BreastSubtypeMRML.volumes import array_from_volume_node, sitk_from_volume_node, volume_node_from_sitk

TUMOUR_SEGMENT_ID = "tumour"
ROI_SEGMENT_IDS = {CORE: "core", RIM: "rim", PERITUMORAL: "peritumoral"}
TUMOUR_COLOR_RGB = (0.35, 0.80, 0.40)  # green: apart from the red/yellow/blue ROI bands
# The terminology file Resources/Terminology/BreastSubtype-SegmentationCategoryTypeModifier.json
# (loaded by the Slicer module at startup) defines this context, so Slicer's terminology selector
# finds the private ROI modifiers below; Testing/mrml checks the two agree.
TERMINOLOGY_CONTEXT = "Segmentation category and type - BreastSubtype"

# (coding scheme designator, code value, code meaning)
_CATEGORY = ("SCT", "49755003", "Morphologically Altered Structure")
_NEOPLASM = ("SCT", "108369006", "Neoplasm")
_BREAST = ("SCT", "76752008", "Breast")
_ROI_MODIFIERS = {
    CORE: ("99BRSUB", "CORE", "Tumour core"),
    RIM: ("99BRSUB", "RIM", "Tumour rim"),
    PERITUMORAL: ("99BRSUB", "PERI", "Peritumoral region"),
}


def _rgb_unit(color) -> tuple[float, float, float]:
    """Colours in the Lib may be 0-255 integers or 0-1 floats; MRML wants 0-1."""
    rgb = np.asarray(color, dtype=float)[:3]
    return tuple(float(v) for v in (rgb / 255.0 if rgb.max() > 1.0 else rgb))


def _set_code(code_object, code: tuple[str, str, str]) -> None:
    code_object.SetCodingSchemeDesignator(code[0])
    code_object.SetCodeValue(code[1])
    code_object.SetCodeMeaning(code[2])


def terminology_string(modifier: tuple[str, str, str] | None = None) -> str:
    """A serialised terminology entry: neoplasm of the breast, optionally with a ROI modifier."""
    entry = slicer.vtkSlicerTerminologyEntry()
    entry.SetTerminologyContextName(TERMINOLOGY_CONTEXT)
    entry.SetRegionContextName("Anatomic codes - DICOM master list")
    _set_code(entry.GetCategoryObject(), _CATEGORY)
    _set_code(entry.GetTypeObject(), _NEOPLASM)
    if modifier is not None:
        _set_code(entry.GetTypeModifierObject(), modifier)
    _set_code(entry.GetRegionObject(), _BREAST)
    return slicer.vtkSlicerTerminologiesModuleLogic.SerializeTerminologyEntry(entry)


def new_segmentation_node(scene, name: str, reference_volume_node):
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    node.CreateDefaultDisplayNodes()
    node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume_node)
    return node


def _ensure_segment(segmentation_node, segment_id: str, name: str, color_rgb, terminology: str):
    segmentation = segmentation_node.GetSegmentation()
    if segmentation.GetSegment(segment_id) is None:
        segmentation.AddEmptySegment(segment_id, name, list(color_rgb))
    segment = segmentation.GetSegment(segment_id)
    segment.SetName(name)
    segment.SetColor(*color_rgb)
    segment.SetTerminology(terminology)
    return segment


def _import_binary(scene, segmentation_node, segment_id: str, binary: sitk.Image) -> None:
    """Replace the voxels of one segment by a binary image on the reference grid."""
    labelmap_node = volume_node_from_sitk(scene, binary, f"{segment_id}-import", labelmap=True)
    try:
        ids = vtk.vtkStringArray()
        ids.InsertNextValue(segment_id)
        if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(
            labelmap_node, segmentation_node, ids
        ):
            raise RuntimeError(f"Could not import the '{segment_id}' voxels into the segmentation.")
    finally:
        scene.RemoveNode(labelmap_node)


def set_roi_segments(scene, segmentation_node, roi_labelmap: sitk.Image) -> dict[int, str]:
    """Fill ``core``/``rim``/``peritumoral`` segments from a labelmap (1 core, 2 rim, 3 peritumoral).

    Existing ROI segments are overwritten; other segments (e.g. the tumour) are left alone.
    Returns ``{label value: segment id}``.
    """
    labels = sitk.Cast(roi_labelmap, sitk.sitkUInt8)
    for label, segment_id in ROI_SEGMENT_IDS.items():
        _ensure_segment(
            segmentation_node,
            segment_id,
            ROI_NAMES[label],
            _rgb_unit(ROI_COLORS_RGB[label]),
            terminology_string(_ROI_MODIFIERS[label]),
        )
        _import_binary(scene, segmentation_node, segment_id, sitk.Cast(labels == label, sitk.sitkUInt8))
    return dict(ROI_SEGMENT_IDS)


def add_roi_segmentation(scene, roi_labelmap: sitk.Image, reference_volume_node, name: str):
    """A new segmentation node with the three ROI segments, on the reference volume's geometry."""
    node = new_segmentation_node(scene, name, reference_volume_node)
    set_roi_segments(scene, node, roi_labelmap)
    return node


def set_tumour_segment(scene, segmentation_node, tumour_mask: sitk.Image, name: str = "tumour") -> str:
    """Fill the ``tumour`` segment (e.g. from the one-click result); returns its segment id."""
    _ensure_segment(segmentation_node, TUMOUR_SEGMENT_ID, name, TUMOUR_COLOR_RGB, terminology_string())
    _import_binary(scene, segmentation_node, TUMOUR_SEGMENT_ID, sitk.Cast(tumour_mask > 0, sitk.sitkUInt8))
    return TUMOUR_SEGMENT_ID


def labelmap_from_segments(
    scene, segmentation_node, label_by_segment_id: Mapping[str, int], reference_volume_node
) -> sitk.Image:
    """A uint8 ``sitk.Image`` on the reference volume's grid, each segment painted with its label.

    Segments are exported one by one so a label value never depends on segment order.
    """
    reference = sitk_from_volume_node(reference_volume_node)
    labels = np.zeros(sitk.GetArrayViewFromImage(reference).shape, dtype=np.uint8)
    segmentation = segmentation_node.GetSegmentation()
    for segment_id, label in label_by_segment_id.items():
        if segmentation.GetSegment(segment_id) is None:
            raise KeyError(f"Segmentation '{segmentation_node.GetName()}' has no segment '{segment_id}'.")
        export_node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", f"{segment_id}-export")
        try:
            ids = vtk.vtkStringArray()
            ids.InsertNextValue(segment_id)
            if not slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
                segmentation_node, ids, export_node, reference_volume_node
            ):
                raise RuntimeError(f"Could not export segment '{segment_id}'.")
            if export_node.GetImageData() is not None:  # an empty segment exports nothing
                labels[array_from_volume_node(export_node) > 0] = label
        finally:
            scene.RemoveNode(export_node)
    result = sitk.GetImageFromArray(labels)
    result.CopyInformation(reference)
    return result


def roi_labelmap_from_segmentation(scene, segmentation_node, reference_volume_node) -> sitk.Image:
    """The (possibly user-edited) ROI segments back as a 1/2/3 labelmap on the reference grid."""
    return labelmap_from_segments(
        scene,
        segmentation_node,
        {segment_id: label for label, segment_id in ROI_SEGMENT_IDS.items()},
        reference_volume_node,
    )


def tumour_mask_from_segment(scene, segmentation_node, segment_id: str, reference_volume_node) -> sitk.Image:
    """One segment (any the user picked) as a binary uint8 mask on the reference volume's grid."""
    return labelmap_from_segments(scene, segmentation_node, {segment_id: 1}, reference_volume_node)
