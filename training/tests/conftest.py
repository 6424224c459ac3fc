"""Shared fixtures of the training tests: one small phantom cohort per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

# Small enough for 2 CPU cores (about 3 s to write), big enough (90 x 90 x 70 mm) for lesions of
# 8-35 mm with their rim and peritumoral band.
COHORT_SIZE = 12
COHORT_SEED = 20260
COHORT_SIZE_IJK = (64, 64, 32)
COHORT_SPACING_MM = (1.4, 1.4, 2.2)


@pytest.fixture(scope="session")
def phantom_cohort(tmp_path_factory) -> Path:
    """Manifest path of a 12-case phantom cohort (images, masks, labels) written once per session."""
    from BreastSubtypeLib.phantom import write_phantom_cohort

    out_dir = tmp_path_factory.mktemp("phantom_cohort")
    manifest = write_phantom_cohort(
        out_dir, n=COHORT_SIZE, seed=COHORT_SEED, size_ijk=COHORT_SIZE_IJK, spacing_mm=COHORT_SPACING_MM
    )
    return Path(manifest)


@pytest.fixture(scope="session")
def phantom_rows(phantom_cohort):
    """The phantom cohort's manifest rows."""
    from BreastSubtypeTraining.manifest import read_manifest

    return read_manifest(phantom_cohort)
