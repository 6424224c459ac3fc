"""A cohort of phantoms on disk: images/, masks/, manifest.csv (SPEC §7) and truth.csv.

>>> manifest = write_phantom_cohort("cohort", n=200, seed=1)  # doctest: +SKIP

Case ``i`` is generated from a seed derived from ``(seed, i)``, so a cohort is reproducible and
case ``i`` does not change when ``n`` does. With ``vary_geometry`` each case gets its own scanner
geometry, as a multi-site cohort would: in-plane spacing 0.6-0.9 mm, slices 1.0-2.0 mm (matrix
chosen to keep the nominal field of view), axis flips (20 % per axis) and, for 10 % of cases, an
oblique axial plane (rotation up to 10 degrees about the slice axis). truth.csv holds what no real
cohort has: the probabilities given the imaging (the achievable ceiling) and the latent features.
"""

from __future__ import annotations

import csv
import io
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from BreastSubtypeLib.atomic import write_text_atomic
from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.imaging.io import write_image
from BreastSubtypeLib.manifest import ManifestRow, write_manifest
from BreastSubtypeLib.phantom.biomarkers import LATENT_FEATURES
from BreastSubtypeLib.phantom.generator import check_geometry, generate_phantom
from BreastSubtypeLib.progress import ProgressCallback, report

TRUTH_COLUMNS = (
    "case_id",
    "p_er",
    "p_pr",
    "p_her2",
    "ki67_expected",
    "ki67_noise_sd",
    "pr_percent",
    "lesion_diameter_mm",
    *LATENT_FEATURES,
)


def case_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def case_geometry(seed: int, index: int, size_ijk, spacing_mm) -> dict:
    """Scanner geometry of case ``index``: spacing, matrix for the same field of view, direction."""
    rng = np.random.default_rng([int(seed), int(index), 1])
    spacing = (round(rng.uniform(0.6, 0.9), 3),) * 2 + (round(rng.uniform(1.0, 2.0), 3),)
    size = tuple(max(24, int(round(n * s / t))) for n, s, t in zip(size_ijk, spacing_mm, spacing))
    signs = np.where(rng.random(3) < 0.2, -1.0, 1.0)
    angle = math.radians(rng.uniform(-10, 10)) if rng.random() < 0.1 else 0.0
    rotation = np.array(
        [[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    direction = rotation @ np.diag(signs)
    return {"size_ijk": size, "spacing_mm": spacing, "direction": tuple(direction.reshape(-1).tolist())}


def _write_case(
    out_dir: Path, seed: int, index: int, size_ijk, spacing_mm, vary_geometry: bool, diameter_mm
) -> tuple:
    geometry = (
        case_geometry(seed, index, size_ijk, spacing_mm)
        if vary_geometry
        else {"size_ijk": size_ijk, "spacing_mm": spacing_mm}
    )
    case_id = f"phantom_{index:04d}"
    case = generate_phantom(
        case_seed(seed, index), case_id=case_id, lesion_diameter_mm=diameter_mm, **geometry
    )
    image_path = write_image(case.image, out_dir / "images" / f"{case_id}.nii.gz")
    mask_path = write_image(case.tumour_mask, out_dir / "masks" / f"{case_id}.nii.gz")
    b, p = case.biomarkers, case.true_probabilities
    row = ManifestRow(
        case_id=case_id,
        image=image_path,
        mask=mask_path,
        er=b.er,
        pr=b.pr,
        her2=b.her2,
        ki67_percent=round(b.ki67_percent, 1),
    )
    truth = [
        case_id,
        p["er"],
        p["pr"],
        p["her2"],
        p["ki67_expected"],
        p["ki67_noise_sd"],
        b.pr_percent,
        case.lesion_diameter_mm,
        *(case.imaging_features[name] for name in LATENT_FEATURES),
    ]
    return row, truth


def write_phantom_cohort(
    out_dir: str | os.PathLike,
    n: int,
    seed: int,
    *,
    size_ijk=(128, 128, 48),
    spacing_mm=(0.7, 0.7, 1.5),
    vary_geometry: bool = True,
    lesion_diameter_mm: float | None = None,
    progress: ProgressCallback | None = None,
    workers: int = 1,
) -> Path:
    """Write ``n`` phantoms and return the path of manifest.csv (written last, atomically).

    ``lesion_diameter_mm`` fixes every lesion's diameter (sampled in 8-35 mm otherwise);
    ``workers`` > 1 generates cases in that many processes (same files as with one).
    """
    if int(n) != n or n < 1:
        raise BadInputError(f"the number of phantom cases must be a positive integer, got {n}.")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInputError(f"{out_dir}: output path exists and is not a folder.")
    size_ijk, spacing_mm, _, _ = check_geometry(size_ijk, spacing_mm, None, None)
    jobs = [
        (out_dir, seed, i, size_ijk, spacing_mm, vary_geometry, lesion_diameter_mm) for i in range(int(n))
    ]
    results = []
    report(progress, 0.0, "phantoms")
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_write_case, *job) for job in jobs]
            for done, future in enumerate(futures, start=1):
                results.append(future.result())
                report(progress, done / len(jobs), f"phantom {done}/{len(jobs)}")
    else:
        for done, job in enumerate(jobs, start=1):
            results.append(_write_case(*job))
            report(progress, done / len(jobs), f"phantom {done}/{len(jobs)}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TRUTH_COLUMNS)
    for _, truth in results:
        writer.writerow([truth[0], *(f"{v:.6g}" for v in truth[1:])])
    write_text_atomic(out_dir / "truth.csv", buffer.getvalue())
    return write_manifest([row for row, _ in results], out_dir / "manifest.csv")
