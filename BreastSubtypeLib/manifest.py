"""The manifest: the one data format the cohort predictor and the training package read (SPEC §7).

CSV with a header, paths relative to the CSV file::

    case_id,image,mask,er,pr,her2,ki67[,split][,patient_id]

er/pr/her2 are 0/1 or empty (unknown), ki67 is 0-100 or empty, split is train/val/test or empty.
Missing labels are normal (no public DCE-MRI set has Ki-67), so they come back as ``None``.

>>> cases = read_manifest("cohort/manifest.csv")  # doctest: +SKIP
>>> cases[0].image  # an absolute Path  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from BreastSubtypeLib.errors import BadInputError

PATH_COLUMNS = ("case_id", "image", "mask")
LABEL_COLUMNS = ("er", "pr", "her2", "ki67")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ManifestCase:
    case_id: str
    image: Path
    mask: Path
    er: int | None = None
    pr: int | None = None
    her2: int | None = None
    ki67_percent: float | None = None
    split: str | None = None
    patient_id: str | None = None  # groups cases for patient-level splits; never written to outputs

    @property
    def labels(self) -> dict[str, float | None]:
        return {"er": self.er, "pr": self.pr, "her2": self.her2, "ki67": self.ki67_percent}


def _binary(value: str, column: str, row: int, source: Path) -> int | None:
    value = value.strip()
    if value == "":
        return None
    if value in ("0", "1", "0.0", "1.0"):
        return int(float(value))
    raise BadInputError(f"Manifest {source} row {row}: {column} must be 0, 1 or empty, got {value!r}.")


def _percent(value: str, row: int, source: Path) -> float | None:
    value = value.strip()
    if value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (0.0 <= number <= 100.0):
        raise BadInputError(f"Manifest {source} row {row}: ki67 must be 0-100 or empty, got {value!r}.")
    return number


def read_manifest(path: str | Path, *, require_labels: bool = True) -> list[ManifestCase]:
    """Read and check a manifest; image/mask paths are resolved against the CSV's folder.

    ``require_labels=False`` accepts a manifest with only case_id,image,mask (cohort prediction).
    """
    source = Path(path)
    if not source.is_file():
        raise BadInputError(f"Manifest {source} does not exist or is not a file.")
    try:
        with source.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in (reader.fieldnames or [])]
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BadInputError(f"Manifest {source} is not a readable CSV file ({exc}).") from exc
    required = PATH_COLUMNS + (LABEL_COLUMNS if require_labels else ())
    missing = [name for name in required if name not in header]
    if missing:
        raise BadInputError(f"Manifest {source} lacks the column(s) {', '.join(missing)}.")
    if not rows:
        raise BadInputError(f"Manifest {source} lists no cases.")

    cases: list[ManifestCase] = []
    seen: set[str] = set()
    for row_number, raw in enumerate(rows, start=2):  # row 1 is the header
        row = {(key or "").strip(): (value or "") for key, value in raw.items()}
        case_id = row["case_id"].strip()
        if not case_id:
            raise BadInputError(f"Manifest {source} row {row_number}: case_id is empty.")
        if case_id in seen:
            raise BadInputError(f"Manifest {source} row {row_number}: case_id {case_id!r} is repeated.")
        if any(sep in case_id for sep in ("/", "\\")) or case_id in (".", ".."):
            raise BadInputError(
                f"Manifest {source} row {row_number}: case_id {case_id!r} is not a file name."
            )
        seen.add(case_id)
        for column in ("image", "mask"):
            if not row[column].strip():
                raise BadInputError(f"Manifest {source} row {row_number}: {column} path is empty.")
        split = row.get("split", "").strip() or None
        if split is not None and split not in SPLITS:
            raise BadInputError(
                f"Manifest {source} row {row_number}: split must be train, val, test or empty, got {split!r}."
            )
        cases.append(
            ManifestCase(
                case_id=case_id,
                image=(source.parent / row["image"].strip()).resolve(),
                mask=(source.parent / row["mask"].strip()).resolve(),
                er=_binary(row.get("er", ""), "er", row_number, source),
                pr=_binary(row.get("pr", ""), "pr", row_number, source),
                her2=_binary(row.get("her2", ""), "her2", row_number, source),
                ki67_percent=_percent(row.get("ki67", ""), row_number, source),
                split=split,
                patient_id=row.get("patient_id", "").strip() or None,
            )
        )
    return cases
