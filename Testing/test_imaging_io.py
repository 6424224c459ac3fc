"""Reading, validation and mask alignment keep geometry and refuse bad input with one clear sentence."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.imaging import (
    align_mask_to_image,
    bounding_box_index,
    list_dicom_series,
    lps_to_ras,
    ras_to_lps,
    read_image,
    validate_image,
    validate_mask,
    write_image,
)


def _geometry(image):
    return image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection()


@pytest.mark.parametrize("name", ["case.nrrd", "case.nii.gz", "case.mha"])
def test_write_then_read_keeps_geometry_and_values(tmp_path, small_image, synth, name):
    flipped = sitk.Image(small_image)
    flipped.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    path = write_image(flipped, tmp_path / name)
    again = read_image(path)
    assert np.allclose(again.GetOrigin(), flipped.GetOrigin()) and np.allclose(
        again.GetSpacing(), flipped.GetSpacing()
    )
    assert np.allclose(again.GetDirection(), flipped.GetDirection())
    assert np.array_equal(sitk.GetArrayViewFromImage(again), sitk.GetArrayViewFromImage(flipped))
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left behind


def test_missing_file_is_named(tmp_path):
    with pytest.raises(BadInputError, match="does not exist") as info:
        read_image(tmp_path / "nope.nrrd")
    assert "nope.nrrd" in str(info.value)


def test_non_image_file_is_refused(tmp_path):
    path = tmp_path / "notes.nrrd"
    path.write_text("this is not an image\n")
    with pytest.raises(BadInputError, match="not an image file") as info:
        read_image(path, what="mask")
    assert str(path) in str(info.value) and "mask" in str(info.value)


def test_huge_volume_refused_from_header_alone(tmp_path):
    header = tmp_path / "huge.nhdr"
    header.write_text(
        "NRRD0004\ntype: short\ndimension: 3\nsizes: 2000 2000 400\nencoding: raw\n"
        "endian: little\ndata file: huge.raw\n"
    )
    (tmp_path / "huge.raw").write_bytes(b"")  # the header is all that may be read
    with pytest.raises(BadInputError, match="1,600,000,000 voxels"):
        read_image(header)


def _write_dicom_series(folder, series_uid, array_kji, spacing=(0.7, 0.7, 1.5)):
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k, plane in enumerate(array_kji):
        slice_image = sitk.GetImageFromArray(plane[np.newaxis].astype(np.int16))[:, :, 0]
        slice_image.SetSpacing(spacing[:2])
        tags = {
            "0008|0060": "MR",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0020|000e": series_uid,
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0032": f"0\\0\\{k * spacing[2]}",
            "0020|0013": str(k + 1),
            "0028|0030": f"{spacing[1]}\\{spacing[0]}",
            "0018|0050": str(spacing[2]),
            "0008|0018": f"{series_uid}.{k + 1}",
            "0010|0010": "Doe^Jane",
        }
        for key, value in tags.items():
            slice_image.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"{series_uid[-1]}_{k:03d}.dcm"))
        writer.Execute(slice_image)


def test_dicom_folder_with_two_series_asks_to_choose(tmp_path):
    rng = np.random.default_rng(3)
    first, second = "1.2.826.0.1.3680043.2.1125.11", "1.2.826.0.1.3680043.2.1125.12"
    _write_dicom_series(tmp_path, first, rng.integers(0, 1000, (4, 8, 8)))
    expected = rng.integers(0, 1000, (5, 8, 8))
    _write_dicom_series(tmp_path, second, expected)
    assert sorted(list_dicom_series(tmp_path)) == [first, second]
    with pytest.raises(BadInputError, match="2 DICOM series") as info:
        read_image(tmp_path)
    assert first in str(info.value) and second in str(info.value) and "series_uid" in str(info.value)
    chosen = read_image(tmp_path, series_uid=second)
    assert chosen.GetSize() == (8, 8, 5)
    assert np.allclose(chosen.GetSpacing(), (0.7, 0.7, 1.5))
    assert np.array_equal(sitk.GetArrayViewFromImage(chosen), expected)
    assert not any("0010" in key for key in chosen.GetMetaDataKeys())  # no patient name carried along


def test_empty_folder_is_refused(tmp_path):
    with pytest.raises(BadInputError, match="no DICOM series"):
        read_image(tmp_path)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: sitk.Image([16, 16], sitk.sitkInt16), "is 2-D"),
        (lambda: sitk.Image([8, 8, 8, 3], sitk.sitkInt16), "is 4-D"),
        (lambda: sitk.Image([8, 8, 8], sitk.sitkVectorFloat32, 3), "3 components"),
    ],
)
def test_image_shape_problems(make, message):
    with pytest.raises(BadInputError, match=message) as info:
        validate_image(make(), "bad.nii.gz")
    assert "bad.nii.gz" in str(info.value)


def test_nan_constant_and_absurd_spacing_are_refused(small_image, synth):
    values = sitk.GetArrayFromImage(small_image).astype(np.float32)
    values[3, 4, 5] = np.nan
    with pytest.raises(BadInputError, match="NaN"):
        validate_image(synth.image_from_array(values), "nan.nrrd")
    with pytest.raises(BadInputError, match="constant"):
        validate_image(synth.image_from_array(np.full((4, 5, 6), 7, np.int16)), "flat.nrrd")
    with pytest.raises(BadInputError, match="spacing"):
        validate_image(synth.image_from_array(values * 0 + 1, spacing=(700, 700, 1500)), "metres.nrrd")
    validate_image(small_image, "fine.nrrd")  # a normal volume passes


def test_mask_must_be_binary_and_non_empty(synth):
    labels = np.zeros((6, 6, 6), np.uint8)
    labels[1:3, 1:3, 1:3] = 1
    labels[4, 4, 4] = 2
    with pytest.raises(BadInputError, match="not binary: it holds the values 0, 1, 2") as info:
        validate_mask(synth.image_from_array(labels), "seg.nrrd")
    assert "seg.nrrd" in str(info.value)
    validate_mask(synth.image_from_array(labels), "seg.nrrd", binary=False)
    validate_mask(synth.image_from_array((labels > 0).astype(np.uint8) * 255), "seg255.nrrd")
    with pytest.raises(BadInputError, match="empty"):
        validate_mask(synth.image_from_array(np.zeros((6, 6, 6), np.uint8)), "none.nrrd")
    with pytest.raises(BadInputError, match="fractional"):
        validate_mask(synth.image_from_array(labels * 0.5), "prob.nrrd", binary=False)


def test_mask_on_same_grid_is_used_as_is(small_image, synth):
    array = np.zeros((16, 32, 32), np.int16)
    array[6:9, 12:15, 12:15] = 1
    mask = synth.image_from_array(array, small_image.GetSpacing(), small_image.GetOrigin())
    aligned = align_mask_to_image(mask, small_image, "m.nrrd")
    assert aligned.GetPixelID() == sitk.sitkUInt8 and _geometry(aligned) == _geometry(small_image)
    assert np.array_equal(sitk.GetArrayViewFromImage(aligned), array)


def test_cropped_mask_is_resampled_onto_the_image_grid(small_image):
    full = np.zeros((16, 32, 32), np.uint8)
    full[6:9, 12:15, 12:15] = 1
    mask = sitk.GetImageFromArray(full)
    mask.CopyInformation(small_image)
    cropped = mask[8:20, 9:18, 4:12]  # a crop keeps its physical position
    aligned = align_mask_to_image(cropped, small_image, "crop.nrrd")
    assert _geometry(aligned) == _geometry(small_image)
    assert np.array_equal(sitk.GetArrayViewFromImage(aligned), full)


def test_mask_on_a_finer_flipped_grid_lands_on_the_same_voxels(small_image):
    full = np.zeros((16, 32, 32), np.uint8)
    full[6:9, 12:15, 12:15] = 1
    mask = sitk.GetImageFromArray(full)
    mask.CopyInformation(small_image)
    # The same physical region on a grid with half the spacing and flipped x/y axes.
    reference = sitk.Image([64, 64, 32], sitk.sitkUInt8)
    reference.SetSpacing([s / 2 for s in small_image.GetSpacing()])
    reference.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    far_corner = small_image.TransformContinuousIndexToPhysicalPoint([31.25, 31.25, -0.25])
    reference.SetOrigin(far_corner)
    other = sitk.Resample(mask, reference, sitk.Transform(), sitk.sitkNearestNeighbor)
    aligned = align_mask_to_image(other, small_image, "fine.nrrd")
    assert np.array_equal(sitk.GetArrayViewFromImage(aligned), full)


def test_mask_elsewhere_in_space_is_refused(small_image):
    mask = sitk.Image(small_image.GetSize(), sitk.sitkUInt8)
    mask.CopyInformation(small_image)
    mask[3, 3, 3] = 1
    mask.SetOrigin([o + 500 for o in small_image.GetOrigin()])
    with pytest.raises(BadInputError, match="does not overlap") as info:
        align_mask_to_image(mask, small_image, "elsewhere.nrrd")
    assert "elsewhere.nrrd" in str(info.value)


def test_bounding_box_in_mm_and_points():
    array = np.zeros((20, 30, 40), np.uint8)
    array[5:7, 10:12, 20:23] = 1
    box = bounding_box_index(array, 2.0, spacing=(0.7, 1.0, 1.5))  # sitk order x, y, z
    assert box == (slice(3, 9), slice(8, 14), slice(17, 26))
    assert bounding_box_index(np.zeros((3, 3, 3)), 1.0, (1, 1, 1)) is None
    assert ras_to_lps((1.5, -2.0, 3.0)) == (-1.5, 2.0, 3.0) and lps_to_ras(ras_to_lps((1, 2, 3))) == (1, 2, 3)
