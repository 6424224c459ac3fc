"""Case outputs: colour maps, PNG overlays in true physical aspect and orientation, HTML report,
and the case folder written by write_case_outputs."""

import io

import numpy as np
import pytest
import SimpleITK as sitk

from BreastSubtypeLib.reports.colormaps import apply_colormap, lookup_table
from BreastSubtypeLib.reports.overlays import OUTPUT_PIXELS, encode_png, render_overlay
from BreastSubtypeLib.rois.labels import CORE, RIM, ROI_COLORS_RGB


def _sphere_case(spacing, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1), size=(64, 64, 40), radius_mm=10.0):
    image = sitk.Image(size, sitk.sitkFloat32)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    image.SetOrigin((-20.0, 35.0, 7.0))
    centre_index = [(n - 1) / 2 for n in size]
    centre = np.asarray(image.TransformContinuousIndexToPhysicalPoint(centre_index))
    k, j, i = np.indices(size[::-1])
    points = np.stack([i, j, k], -1).reshape(-1, 3).astype(float)
    physical = (np.asarray(direction).reshape(3, 3) @ (points * spacing).T).T + image.GetOrigin()
    distance = np.linalg.norm(physical - centre, axis=1).reshape(size[::-1])
    labels = np.where(distance <= radius_mm - 3, CORE, np.where(distance <= radius_mm, RIM, 0)).astype(
        np.uint8
    )
    labelmap = sitk.GetImageFromArray(labels)
    labelmap.CopyInformation(image)
    rng = np.random.default_rng(0)
    image = sitk.GetImageFromArray(
        (100 + 10 * rng.standard_normal(labels.shape) + 300 * (labels > 0)).astype(np.float32)
    )
    image.CopyInformation(labelmap)
    return image, labelmap, centre


def _outline_extent_mm(rgb, colour):
    rows, cols = np.nonzero(np.all(rgb == np.rint(np.asarray(colour) * 255).astype(np.uint8), axis=2))
    return np.ptp(cols), np.ptp(rows), cols.mean(), rows.mean()


def test_colormaps_are_built_from_their_data():
    table = lookup_table("inferno")
    assert table.shape == (256, 3) and table.dtype == np.uint8
    assert table[0].tolist() == [0, 0, 4] and table[255].tolist() == [252, 255, 164]
    assert lookup_table("viridis")[0].tolist() == [68, 1, 84]
    luminance = table @ np.array([0.2126, 0.7152, 0.0722])
    assert np.all(np.diff(luminance) >= -0.5)  # perceptual maps brighten monotonically
    assert apply_colormap(np.array([np.nan, 2.0]), "inferno").tolist() == [[0, 0, 4], [252, 255, 164]]


def test_png_encoder_round_trips_exactly():
    from PIL import Image

    rgb = np.random.default_rng(1).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(rgb))).convert("RGB"))
    assert np.array_equal(decoded, rgb)


@pytest.mark.parametrize("view", ["coronal", "sagittal"])
def test_overlay_keeps_the_physical_aspect_ratio_of_anisotropic_voxels(view):
    spacing = (0.6, 0.6, 2.0)
    image, labelmap, _ = _sphere_case(spacing)
    rgb = render_overlay(image, labelmap, None, view)
    assert rgb.shape == (OUTPUT_PIXELS, OUTPUT_PIXELS, 3)
    width_px, height_px, _, _ = _outline_extent_mm(rgb, ROI_COLORS_RGB[RIM])
    pixel_mm = 60.0 / OUTPUT_PIXELS  # the minimum field of view for a 20 mm lesion
    # A sphere stays round: voxel counts would make it 3.3x wider than tall.
    assert abs(width_px - height_px) * pixel_mm <= spacing[2]


def test_overlay_uses_radiological_orientation_for_flipped_and_oblique_inputs():
    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    for direction in [(-1, 0, 0, 0, -1, 0, 0, 0, 1), (c, -s, 0, s, c, 0, 0, 0, 1)]:
        image, labelmap, centre = _sphere_case((0.7, 0.7, 1.1), direction, radius_mm=6.0)
        # Move the lesion 12 mm to the patient's left (+x in LPS) of the plane centre.
        left_of = (centre[0] - 12.0, centre[1], centre[2])
        rgb = render_overlay(image, labelmap, None, "axial", centre=left_of)
        _, _, col, row = _outline_extent_mm(rgb, ROI_COLORS_RGB[RIM])
        assert col > OUTPUT_PIXELS / 2 + 40  # patient's left on the viewer's right
        assert abs(row - (OUTPUT_PIXELS - 1) / 2) < 3


def test_heatmap_is_blended_with_the_colormap():
    image, labelmap, _ = _sphere_case((0.7, 0.7, 1.1))
    heat = sitk.Cast(labelmap > 0, sitk.sitkFloat32)
    plain = render_overlay(image, labelmap, None, "axial")
    hot = render_overlay(image, labelmap, heat, "axial")
    centre_px = OUTPUT_PIXELS // 2
    assert hot[centre_px, centre_px].tolist() != plain[centre_px, centre_px].tolist()
    assert hot[5, 5].tolist() == plain[5, 5].tolist()  # zero attention leaves the anatomy untouched


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from predict_helpers import random_model_package

    return random_model_package(tmp_path_factory.mktemp("model") / "random")


@pytest.mark.parametrize("direction", ["identity", "flipped", "oblique"])
def test_maps_are_8bit_on_the_exact_input_grid_and_round_trip_within_one_step(model, tmp_path, direction):
    from predict_helpers import FLIPPED, oblique_direction, small_case

    from BreastSubtypeLib.inference.outputs import (
        MAP_VALUE_SCALE,
        map_value_scale,
        map_values,
        write_case_outputs,
    )
    from BreastSubtypeLib.inference.predict import predict

    directions = {"identity": None, "flipped": FLIPPED, "oblique": oblique_direction(25.0)}
    case = small_case(4, direction=directions[direction])
    prediction = predict(case.image, case.tumour_mask, model, "cpu")
    summary = write_case_outputs(prediction, tmp_path / "out")
    assert map_value_scale(summary) == MAP_VALUE_SCALE == 1 / 255
    files = summary["maps"]["files"]
    assert files["attention_fused"] == "attention.nrrd" and set(files) == set(prediction.maps)
    for name, file_name in files.items():
        stored = sitk.ReadImage(str(tmp_path / "out" / file_name))
        assert stored.GetPixelID() == sitk.sitkUInt8, name
        assert stored.GetSize() == case.image.GetSize()
        assert stored.GetOrigin() == case.image.GetOrigin() and stored.GetSpacing() == case.image.GetSpacing()
        if direction == "oblique":  # NRRD stores spacing x direction as text: the last bit may differ
            np.testing.assert_allclose(stored.GetDirection(), case.image.GetDirection(), rtol=0, atol=1e-15)
        else:
            assert stored.GetDirection() == case.image.GetDirection()
        expected = sitk.GetArrayFromImage(prediction.maps[name])  # float32 on the input grid, in memory
        values = sitk.GetArrayFromImage(map_values(stored, map_value_scale(summary)))
        assert expected.max() > 0.2, name  # a map with something in it
        assert np.abs(values - expected).max() <= 0.5 / 255 + 1e-6, name


def test_overlays_look_only_at_the_lesion_box_yet_match_the_whole_volume_centroid():
    from BreastSubtypeLib.reports.overlays import field_of_view_for, lesion_centre_mm

    image, labelmap, centre = _sphere_case((0.7, 0.7, 1.1), direction=(-1, 0, 0, 0, 1, 0, 0, 0, 1))
    labels = sitk.GetArrayViewFromImage(labelmap)
    k, j, i = np.nonzero((labels == CORE) | (labels == RIM))
    whole = labelmap.TransformContinuousIndexToPhysicalPoint((i.mean(), j.mean(), k.mean()))
    np.testing.assert_allclose(lesion_centre_mm(labelmap), whole, atol=1e-9)
    np.testing.assert_allclose(lesion_centre_mm(labelmap), centre, atol=0.5)
    assert field_of_view_for(labelmap) == 60.0  # a 20 mm lesion: the minimum field of view


def test_maps_given_as_plain_images_are_written_exactly_as_the_box_writer_writes_them(model, tmp_path):
    from predict_helpers import small_case

    from BreastSubtypeLib.inference.outputs import write_case_outputs
    from BreastSubtypeLib.inference.predict import predict

    case = small_case(5)
    prediction = predict(case.image, case.tumour_mask, model, "cpu", explain=False)
    files = write_case_outputs(prediction, tmp_path / "box")["maps"]["files"]
    prediction.maps = dict(prediction.maps)  # {name: float32 image on the input grid}
    write_case_outputs(prediction, tmp_path / "whole")
    for file_name in files.values():
        box, whole = (sitk.ReadImage(str(tmp_path / folder / file_name)) for folder in ("box", "whole"))
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(box), sitk.GetArrayViewFromImage(whole))
        assert box.GetPixelID() == whole.GetPixelID() == sitk.sitkUInt8


def test_crc_over_zero_runs_matches_zlib():
    import zlib

    from BreastSubtypeLib.inference.sparse_nrrd import crc32_after_zeros

    rng = np.random.default_rng(7)
    for count in [0, 1, 255, 4096, 1 << 20, *rng.integers(1, 50_000_000, 20).tolist()]:
        crc = int(rng.integers(0, 2**32))
        assert crc32_after_zeros(crc, count) == zlib.crc32(bytes(count), crc), count


@pytest.mark.parametrize(
    "lower_ijk, shape_kji", [((5, 7, 3), (4, 6, 9)), ((0, 0, 0), (12, 30, 20)), ((3, 3, 3), (0, 0, 0))]
)
def test_a_sparse_nrrd_is_one_ordinary_gzip_volume_on_the_exact_grid(tmp_path, lower_ijk, shape_kji):
    import zlib

    from BreastSubtypeLib.inference.sparse_nrrd import write_sparse_nrrd

    grid = sitk.Image([20, 30, 12], sitk.sitkUInt8)
    grid.SetSpacing((0.7, 0.8, 1.1))
    grid.SetOrigin((-12.5, 40.25, 7.0))
    grid.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, 1))
    box = np.random.default_rng(1).integers(1, 256, shape_kji, dtype=np.uint8)
    expected = np.zeros((12, 30, 20), np.uint8)
    i, j, k = lower_ijk
    expected[k : k + shape_kji[0], j : j + shape_kji[1], i : i + shape_kji[2]] = box
    path = tmp_path / "map.nrrd"
    write_sparse_nrrd(path, box, lower_ijk, grid, {"value_scale": "0.5"})
    read = sitk.ReadImage(str(path))
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(read), expected)
    for get in ("GetSize", "GetSpacing", "GetOrigin", "GetDirection"):
        assert getattr(read, get)() == getattr(grid, get)()
    assert read.GetPixelID() == sitk.sitkUInt8 and read.GetMetaData("value_scale") == "0.5"
    raw = path.read_bytes()
    member = zlib.decompressobj(31)  # one gzip member, as single-stream readers (pynrrd) expect
    assert member.decompress(raw[raw.index(b"\n\n") + 2 :]) == expected.tobytes()
    assert member.eof and member.unused_data == b""


def test_a_box_outside_the_grid_is_refused(tmp_path):
    from BreastSubtypeLib.inference.sparse_nrrd import write_sparse_nrrd

    with pytest.raises(ValueError, match="does not fit"):
        write_sparse_nrrd(
            tmp_path / "m.nrrd",
            np.ones((2, 2, 2), np.uint8),
            (19, 0, 0),
            sitk.Image([20, 5, 5], sitk.sitkUInt8),
        )
