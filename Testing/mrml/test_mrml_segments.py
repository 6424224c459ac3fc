"""ROI labelmap <-> core/rim/peritumoral segments with exact voxels, names, colours, terminology."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL, RIM, ROI_COLORS_RGB
from BreastSubtypeMRML import segments, volumes


def _case(seed: int = 3) -> tuple[sitk.Image, sitk.Image]:
    """A 16x14x12 volume (oblique, anisotropic) and nested ROI shells with a ragged edge."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((12, 14, 16), np.uint8)
    labels[2:10, 2:12, 2:14] = PERITUMORAL
    labels[3:9, 4:10, 4:12] = RIM
    labels[5:7, 6:8, 6:10] = CORE
    labels[rng.random(labels.shape) < 0.05] = 0  # holes: the round trip must keep every voxel
    roi = sitk.GetImageFromArray(labels)
    image = sitk.GetImageFromArray(rng.integers(0, 4095, labels.shape).astype(np.int16))
    for im in (roi, image):
        im.SetSpacing((0.7, 0.7, 1.1))
        im.SetOrigin((12.0, -40.0, 7.5))
        im.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    return image, roi


def test_roi_segments_round_trip_exactly(mrml):
    image, roi = _case()
    reference = volumes.volume_node_from_sitk(mrml.scene, image, "post-contrast")
    node = segments.add_roi_segmentation(mrml.scene, roi, reference, "ROIs")
    back = segments.roi_labelmap_from_segmentation(mrml.scene, node, reference)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(roi))
    assert back.GetSpacing() == roi.GetSpacing()
    np.testing.assert_allclose(back.GetOrigin(), roi.GetOrigin(), atol=1e-12)
    np.testing.assert_allclose(back.GetDirection(), roi.GetDirection(), atol=1e-12)


def test_roi_segments_have_names_colours_and_terminology(mrml):
    image, roi = _case()
    reference = volumes.volume_node_from_sitk(mrml.scene, image, "post-contrast")
    segmentation = segments.add_roi_segmentation(mrml.scene, roi, reference, "ROIs").GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 3
    colours = set()
    for label, segment_id in segments.ROI_SEGMENT_IDS.items():
        segment = segmentation.GetSegment(segment_id)
        assert segment.GetName() == segment_id
        np.testing.assert_allclose(segment.GetColor(), ROI_COLORS_RGB[label])
        assert "108369006" in segment.GetTerminology()  # SNOMED CT neoplasm
        colours.add(segment.GetColor())
    assert len(colours) == 3
    assert "Peritumoral region" in segmentation.GetSegment("peritumoral").GetTerminology()


def test_regenerating_rois_replaces_voxels_and_keeps_other_segments(mrml):
    image, roi = _case()
    reference = volumes.volume_node_from_sitk(mrml.scene, image, "post-contrast")
    node = segments.add_roi_segmentation(mrml.scene, roi, reference, "ROIs")
    tumour = sitk.Cast(roi == CORE, sitk.sitkUInt8)
    segments.set_tumour_segment(mrml.scene, node, tumour)
    smaller = sitk.Cast(roi == CORE, sitk.sitkUInt8) * CORE  # only a core this time
    segments.set_roi_segments(mrml.scene, node, smaller)
    back = segments.roi_labelmap_from_segmentation(mrml.scene, node, reference)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(smaller))
    assert node.GetSegmentation().GetNumberOfSegments() == 4


def test_tumour_segment_exports_as_binary_mask_on_the_volume_grid(mrml):
    image, roi = _case()
    reference = volumes.volume_node_from_sitk(mrml.scene, image, "post-contrast")
    node = segments.new_segmentation_node(mrml.scene, "tumour", reference)
    tumour = sitk.Cast((roi == CORE) | (roi == RIM), sitk.sitkUInt8)
    segment_id = segments.set_tumour_segment(mrml.scene, node, tumour)
    mask = segments.tumour_mask_from_segment(mrml.scene, node, segment_id, reference)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(mask), sitk.GetArrayViewFromImage(tumour))
    assert mask.GetPixelID() == sitk.sitkUInt8


def test_temporary_nodes_are_removed(mrml):
    image, roi = _case()
    reference = volumes.volume_node_from_sitk(mrml.scene, image, "post-contrast")
    node = segments.add_roi_segmentation(mrml.scene, roi, reference, "ROIs")
    segments.roi_labelmap_from_segmentation(mrml.scene, node, reference)
    assert mrml.scene.GetNumberOfNodesByClass("vtkMRMLLabelMapVolumeNode") == 0
