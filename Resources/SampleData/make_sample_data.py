"""Remakes the demo phantom shipped for Slicer's Sample Data module (offline demo).

    .venv/bin/python Resources/SampleData/make_sample_data.py

Writes into BreastSubtype/Resources/SampleData/: the post-contrast phantom volume (compressed
NRRD, made by the project's own generator, ``breast-subtype phantom``), its tumour as a
``.seg.nrrd`` made by the module's MRML code (segment ``tumour`` with terminology and colour), and
a thumbnail. Then it prints the SHA-256 values to paste into
``BreastSubtype/BreastSubtypeModuleLib/sampledata.py`` (a test compares them with the files).
Synthetic data: no patient is involved; the demo model was trained on phantoms like this one.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "BreastSubtype"))

from BreastSubtypeLib.imaging.io import read_image, write_image  # noqa: E402
from BreastSubtypeLib.model.registry import sha256_of  # noqa: E402
from BreastSubtypeLib.reports.overlays import encode_png, render_overlay  # noqa: E402
from BreastSubtypeModuleLib import sampledata  # noqa: E402
from BreastSubtypeMRML import io, segments, volumes  # noqa: E402
from BreastSubtypeMRML.headless import headless_scene  # noqa: E402

SEED = 3  # a cohort seed whose single case has one clearly enhancing lesion
SIZE = "128,128,48"  # 0.7 x 0.7 x 1.5 mm: ~1 MB compressed, small enough to ship
THUMBNAIL_PIXELS = 128


def main() -> None:
    out = sampledata.sample_folder(ROOT / "BreastSubtype")
    out.mkdir(parents=True, exist_ok=True)
    volume_file, tumour_file = (out / f.file_name for f in sampledata.FILES)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "BreastSubtypeLib.cli.main", "phantom", "--out", tmp, "--n", "1",
             "--seed", str(SEED), "--size", SIZE, "--fixed-geometry"],
            check=True,
        )  # fmt: skip
        image = read_image(Path(tmp) / "images" / "phantom_0000.nii.gz")
        mask = read_image(Path(tmp) / "masks" / "phantom_0000.nii.gz", what="mask")
    write_image(image, volume_file)
    headless = headless_scene()
    volume = volumes.volume_node_from_sitk(headless.scene, image, "BreastSubtype phantom")
    tumour = segments.new_segmentation_node(headless.scene, "BreastSubtype phantom tumour", volume)
    segments.set_tumour_segment(headless.scene, tumour, mask)
    io.save_segmentation(tumour, tumour_file)
    labels = sitk.Cast(mask > 0, sitk.sitkUInt8)
    thumbnail = render_overlay(image, labels, None, "axial", pixels=THUMBNAIL_PIXELS)
    (out / sampledata.THUMBNAIL).write_bytes(encode_png(thumbnail))
    for path in (volume_file, tumour_file):
        print(f"{path.name}: size {path.stat().st_size} bytes, sha256 {sha256_of(path)}")


if __name__ == "__main__":
    main()
