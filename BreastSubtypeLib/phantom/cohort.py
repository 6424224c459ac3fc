"""A cohort of phantoms on disk: images/, masks/, manifest.csv (SPEC §7) and truth.csv.

>>> manifest = write_phantom_cohort("cohort", n=200, seed=1)  # doctest: +SKIP
>>> manifest = write_phantom_cohort("wide", n=400, seed=2, profile="wide")  # doctest: +SKIP

Case ``i`` is generated from a seed derived from ``(seed, i)``, so a cohort is reproducible and
case ``i`` does not change when ``n`` does. With ``vary_geometry`` each case gets its own scanner
geometry, as a multi-site cohort would: in-plane spacing 0.6-0.9 mm, slices 1.0-2.0 mm (matrix
chosen to keep the nominal field of view), axis flips (20 % per axis) and, for 10 % of cases, an
oblique axial plane (rotation up to 10 degrees about the slice axis). truth.csv holds what no real
cohort has: the probabilities given the imaging (the achievable ceiling), the latent features, the
real labels (also where manifest.csv leaves them blank) and each case's intensity representation.

Cohort variations (SPEC §8a: what a real cohort varies). Each is off by default, and the default
cohort is the same, file for file, as before they existed:

- ``intensity``: how voxels are stored. ``int12`` 12-bit integers (int16, 0-4095; the default);
  ``float`` float32, times a random global scale (log-uniform x0.01-x100) plus an offset (up to
  +-10 % of the scaled range), sub-integer dither so the values are continuous; ``unit`` float32
  rescaled to 0-1 (per case min-max); ``mixed`` one of the three drawn per case.
- ``inplane_mm`` / ``slice_mm``: the (lo, hi) ranges of the per-case spacing (0.6-0.9 / 1.0-2.0
  by default); the matrix keeps the nominal field of view.
- ``lesion_mm``: (lo, hi) range of lesion diameters, 3-60 mm; sampled geometrically from the
  latent lesion size (``lesion.py``; 5-60 mm: median 17 mm). A lesion is never shrunk to fit: the
  case's matrix grows (same spacing) until the lesion and its 6 mm peritumoral band fit, so large
  lesions give larger images. A 5 mm lesion on 1.5 x 1.5 x 3 mm voxels keeps >= ~10 voxels.
- ``prevalence``: {"er": .., "pr": .., "her2": ..} replacing ``biomarkers.PREVALENCE`` (any
  subset). The label models' biases are solved for them and their weights kept, so the imaging
  correlates are unchanged and truth.csv's p_* stay the exact probabilities given the imaging.
- ``missing``: {"ki67": 0.5, "er": 0.1, ...}: that fraction of the cohort's labels (rounded to a
  whole number of cases) is left blank in manifest.csv; which ones follows from the seed.
- ``profile``: a named set of the above; options given explicitly override it. ``PROFILES``:
  ``wide`` = intensity mixed, in-plane 0.5-1.5 mm, slices 1-3 mm, lesions 5-60 mm, prevalences
  ER 45 % / PR 35 % / HER2 30 %, Ki-67 missing for half the cases.

Each variation draws from its own stream derived from ``(seed, i)``, so turning one on changes only
what it varies (and the matrix of a case whose lesion needs a larger field of view).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from BreastSubtypeLib.atomic import write_text_atomic
from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.imaging.io import write_image
from BreastSubtypeLib.manifest import ManifestRow, write_manifest
from BreastSubtypeLib.phantom.biomarkers import LATENT_FEATURES, check_prevalence
from BreastSubtypeLib.phantom.checks import number_in, range_in
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
    "er",
    "pr",
    "her2",
    "ki67_percent",
    "intensity",
)


INTENSITIES = ("int12", "float", "unit")
LABELS = ("er", "pr", "her2", "ki67")
_FIELD = {"er": "er", "pr": "pr", "her2": "her2", "ki67": "ki67_percent"}  # manifest row field of each
DEFAULT_INPLANE_MM = (0.6, 0.9)
DEFAULT_SLICE_MM = (1.0, 2.0)
PROFILES = {
    "wide": {
        "intensity": "mixed",
        "inplane_mm": (0.5, 1.5),
        "slice_mm": (1.0, 3.0),
        "lesion_mm": (5.0, 60.0),
        "prevalence": {"er": 0.45, "pr": 0.35, "her2": 0.30},
        "missing": {"ki67": 0.5},
    },
}
# Streams of case i beside its phantom's own seed: [seed, i, stream].
_GEOMETRY_STREAM, _INTENSITY_STREAM, _MISSING_STREAM = 1, 2, 3


def case_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def case_geometry(
    seed: int, index: int, size_ijk, spacing_mm, inplane_mm=DEFAULT_INPLANE_MM, slice_mm=DEFAULT_SLICE_MM
) -> dict:
    """Scanner geometry of case ``index``: spacing, matrix for the same field of view, direction."""
    rng = np.random.default_rng([int(seed), int(index), _GEOMETRY_STREAM])
    spacing = (round(rng.uniform(*inplane_mm), 3),) * 2 + (round(rng.uniform(*slice_mm), 3),)
    size = tuple(max(24, int(round(n * s / t))) for n, s, t in zip(size_ijk, spacing_mm, spacing))
    signs = np.where(rng.random(3) < 0.2, -1.0, 1.0)
    angle = math.radians(rng.uniform(-10, 10)) if rng.random() < 0.1 else 0.0
    rotation = np.array(
        [[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    direction = rotation @ np.diag(signs)
    return {"size_ijk": size, "spacing_mm": spacing, "direction": tuple(direction.reshape(-1).tolist())}


def represent_intensity(image: sitk.Image, intensity: str, seed: int, index: int) -> tuple[sitk.Image, str]:
    """The case's voxels stored as ``intensity`` says (``mixed``: drawn per case) and that choice."""
    rng = np.random.default_rng([int(seed), int(index), _INTENSITY_STREAM])
    draws = rng.random(4)  # always four draws: the choice never shifts the others
    kind = INTENSITIES[int(draws[0] * 3)] if intensity == "mixed" else intensity
    if kind == "int12":
        return image, kind
    values = sitk.GetArrayFromImage(image).astype(np.float32)
    values += rng.random(values.shape, dtype=np.float32) - 0.5  # continuous, as a float image is
    if kind == "float":
        scale = 10.0 ** (4.0 * draws[1] - 2.0)
        offset = (0.2 * draws[2] - 0.1) * 4095.0 * scale
        values = values * np.float32(scale) + np.float32(offset)
    else:
        low, high = float(values.min()), float(values.max())
        values = (values - np.float32(low)) / np.float32(max(high - low, 1e-6))
    result = sitk.GetImageFromArray(values.astype(np.float32, copy=False))
    result.CopyInformation(image)
    return result, kind


def _write_case(out_dir: Path, seed: int, index: int, size_ijk, spacing_mm, options: dict) -> tuple:
    if options["vary_geometry"]:
        geometry = case_geometry(
            seed, index, size_ijk, spacing_mm, options["inplane_mm"], options["slice_mm"]
        )
    else:
        geometry = {"size_ijk": size_ijk, "spacing_mm": spacing_mm}
    case_id = f"phantom_{index:04d}"
    case = generate_phantom(
        case_seed(seed, index),
        case_id=case_id,
        lesion_diameter_mm=options["lesion_diameter_mm"],
        lesion_range_mm=options["lesion_mm"],
        prevalence=options["prevalence"],
        **geometry,
    )
    image, kind = represent_intensity(case.image, options["intensity"], seed, index)
    image_path = write_image(image, out_dir / "images" / f"{case_id}.nii.gz")
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
        p["er"],
        p["pr"],
        p["her2"],
        p["ki67_expected"],
        p["ki67_noise_sd"],
        b.pr_percent,
        case.lesion_diameter_mm,
        *(case.imaging_features[name] for name in LATENT_FEATURES),
        b.er,
        b.pr,
        b.her2,
        b.ki67_percent,
    ]
    return row, [case_id, *(f"{v:.6g}" for v in truth), kind]


def missing_labels(seed: int, n: int, missing: dict) -> dict[str, set[int]]:
    """Which cases lose which label: round(fraction * n) cases per label, the ones with the lowest
    per-case keys (drawn from ``(seed, i)``), so the count is exact and the choice reproducible."""
    keys = np.array(
        [np.random.default_rng([int(seed), i, _MISSING_STREAM]).random(len(LABELS)) for i in range(n)]
    )
    blank = {}
    for column, label in enumerate(LABELS):
        count = int(round(missing.get(label, 0.0) * n))
        blank[label] = set(np.argsort(keys[:, column], kind="stable")[:count].tolist())
    return blank


def resolve_variation(profile: str | None = None, **given) -> dict:
    """The cohort variation: the profile's settings, then every option given (not None) over them."""
    if profile is not None and profile not in PROFILES:
        raise BadInputError(f"unknown phantom profile {profile!r}; expected one of {sorted(PROFILES)}.")
    base = {"intensity": "int12", "inplane_mm": None, "slice_mm": None, "lesion_mm": None,
            "prevalence": None, "missing": None}  # fmt: skip
    unknown = set(given) - set(base)
    if unknown:
        raise TypeError(f"unknown cohort variation {sorted(unknown)}")
    settings = {**base, **PROFILES.get(profile, {}), **{k: v for k, v in given.items() if v is not None}}
    if settings["intensity"] not in (*INTENSITIES, "mixed"):
        raise BadInputError(
            f"intensity must be one of {', '.join((*INTENSITIES, 'mixed'))}, got {settings['intensity']!r}."
        )
    for name, default in (("inplane_mm", DEFAULT_INPLANE_MM), ("slice_mm", DEFAULT_SLICE_MM)):
        settings[name] = (
            range_in(settings[name], f"{name} (spacing)", 0.1, 10.0) if settings[name] else default
        )
    if settings["lesion_mm"] is not None:
        settings["lesion_mm"] = range_in(settings["lesion_mm"], "lesion_mm (diameter)", 3.0, 60.0)
    if settings["prevalence"] is not None:
        check_prevalence(settings["prevalence"])
        settings["prevalence"] = dict(settings["prevalence"])
    settings["missing"] = _missing_fractions(settings["missing"] or {})
    return settings


def _missing_fractions(missing: dict) -> dict[str, float]:
    unknown = set(missing) - set(LABELS)
    if unknown:
        raise BadInputError(
            f"unknown labels {sorted(unknown)} to leave missing; expected some of {list(LABELS)}."
        )
    return {
        label: number_in(value, f"the missing fraction of {label}", 0.0, 1.0)
        for label, value in missing.items()
    }


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
    profile: str | None = None,
    intensity: str | None = None,
    inplane_mm=None,
    slice_mm=None,
    lesion_mm=None,
    prevalence: dict | None = None,
    missing: dict | None = None,
) -> Path:
    """Write ``n`` phantoms and return the path of manifest.csv (written last, atomically).

    ``lesion_diameter_mm`` fixes every lesion's diameter (sampled in 8-35 mm otherwise);
    ``workers`` > 1 generates cases in that many processes (same files as with one). ``profile``,
    ``intensity``, ``inplane_mm``, ``slice_mm``, ``lesion_mm``, ``prevalence`` and ``missing``
    vary the cohort as the module docstring says (None: the profile's setting, else the default).
    """
    if int(n) != n or n < 1:
        raise BadInputError(f"the number of phantom cases must be a positive integer, got {n}.")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInputError(f"{out_dir}: output path exists and is not a folder.")
    size_ijk, spacing_mm, _, _ = check_geometry(size_ijk, spacing_mm, None, None)
    options = resolve_variation(profile, intensity=intensity, inplane_mm=inplane_mm, slice_mm=slice_mm,
                                lesion_mm=lesion_mm, prevalence=prevalence, missing=missing)  # fmt: skip
    if not vary_geometry and (inplane_mm is not None or slice_mm is not None):
        raise BadInputError("spacing ranges need per-case geometry; drop the fixed geometry or the ranges.")
    if lesion_diameter_mm is not None and options["lesion_mm"] is not None:
        raise BadInputError("give either a fixed lesion diameter or a lesion diameter range, not both.")
    missing = options.pop("missing")
    options.update(vary_geometry=vary_geometry, lesion_diameter_mm=lesion_diameter_mm)
    jobs = [(out_dir, seed, i, size_ijk, spacing_mm, options) for i in range(int(n))]
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
    writer.writerows(truth for _, truth in results)
    write_text_atomic(out_dir / "truth.csv", buffer.getvalue())
    blank = missing_labels(seed, len(results), missing)
    rows = [
        dataclasses.replace(row, **{_FIELD[label]: None for label in LABELS if i in blank[label]})
        for i, (row, _) in enumerate(results)
    ]
    return write_manifest(rows, out_dir / "manifest.csv")
