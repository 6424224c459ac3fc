"""Shared test data for the inference tests: small phantoms and a model package saved from a
randomly initialised network (a legitimate fixture for contract, geometry and determinism tests)."""

from __future__ import annotations

import math
from pathlib import Path

import SimpleITK as sitk

SMALL_CASE = {"size_ijk": (64, 64, 32), "spacing_mm": (0.8, 0.8, 1.5)}


def oblique_direction(degrees: float = 25.0) -> tuple[float, ...]:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return (c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)


FLIPPED = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


def small_case(seed: int = 3, direction=None):
    from BreastSubtypeLib.phantom import generate_phantom

    return generate_phantom(seed, direction=direction, lesion_diameter_mm=14.0, **SMALL_CASE)


def random_model_package(out_dir: Path, *, demonstration: bool = True, seed: int = 0) -> Path:
    """A complete model package from a randomly initialised small network."""
    import torch

    from BreastSubtypeLib.model.config import NetworkConfig, PreprocessingConfig
    from BreastSubtypeLib.model.network import SpatialMultiTaskNet
    from BreastSubtypeLib.model.package import save_model_package

    torch.manual_seed(seed)
    network_config = NetworkConfig(widths=(8, 16, 32, 64))
    preprocessing = PreprocessingConfig(crop_size_voxels=(32, 32, 32), target_spacing_mm=1.0)
    network = SpatialMultiTaskNet(network_config).eval()
    metadata = {
        "id": "random-test",
        "version": "0.0.1",
        "title": "Random network (test fixture)",
        "description": "Randomly initialised network for tests.",
        "thresholds": {"er": 0.5, "pr": 0.45, "her2": 0.55},
        "subtype_scheme": "st_gallen_2013",
        "demonstration": demonstration,
        "intended_use": "Tests only.",
    }
    save_model_package(
        network, network_config, preprocessing, Path(out_dir), metadata=metadata,
        model_card_markdown="# Random test model\n", license_text="Apache-2.0\n",
    )  # fmt: skip
    return Path(out_dir)


def write_case(case, folder: Path, stem: str = "case") -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    image_path, mask_path = folder / f"{stem}_image.nrrd", folder / f"{stem}_mask.nrrd"
    sitk.WriteImage(case.image, str(image_path), True)
    sitk.WriteImage(case.tumour_mask, str(mask_path), True)
    return image_path, mask_path


def same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    """Exactly the same grid: outputs copy the input's geometry, so tests allow no tolerance
    (``imaging.alignment.same_grid`` is the tolerant check for users' inputs)."""
    return (
        a.GetSize() == b.GetSize()
        and a.GetSpacing() == b.GetSpacing()
        and a.GetOrigin() == b.GetOrigin()
        and a.GetDirection() == b.GetDirection()
    )
