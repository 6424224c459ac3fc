"""The manifest: the one CSV of cases that training, evaluation and cohort tools read (SPEC §7).

The ONE implementation, shared by cohort prediction (``BreastSubtypeLib.inference.cohort``) and the
training package (which imports it from here: BreastSubtypeLib never depends on training).

Header ``case_id,image,mask,er,pr,her2,ki67[,split][,patient_id]``; paths are relative to the CSV.
er/pr/her2 are 0, 1 or empty (unknown), ki67 is 0-100 or empty, split is train/val/test or empty.
Missing labels are normal. Every bad row is reported at once, in one ``BadInputError``, so a user
fixes the whole file in one pass instead of one error per run.

>>> rows = read_manifest("cohort/manifest.csv")  # doctest: +SKIP
>>> rows[0].case_id, rows[0].er, rows[0].ki67_percent  # doctest: +SKIP
('case_000', 1, 23.5)
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from BreastSubtypeLib.atomic import write_text_atomic
from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.tasks import RECEPTORS

REQUIRED_COLUMNS = ("case_id", "image", "mask", "er", "pr", "her2", "ki67")
OPTIONAL_COLUMNS = ("split", "patient_id")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ManifestRow:
    case_id: str
    image: Path
    mask: Path
    er: int | None = None
    pr: int | None = None
    her2: int | None = None
    ki67_percent: float | None = None
    split: str | None = None
    patient_id: str = field(default="")

    def __post_init__(self) -> None:
        # A patient without an explicit id is its own patient (one case each).
        if not self.patient_id:
            object.__setattr__(self, "patient_id", self.case_id)

    @property
    def labels(self) -> dict[str, float | None]:
        return {"er": self.er, "pr": self.pr, "her2": self.her2, "ki67_percent": self.ki67_percent}


def _parse_receptor(name: str, text: str, problems: list[str]) -> int | None:
    if text == "":
        return None
    # Spreadsheets export 1 as "1.0"; accept that, nothing else.
    if text in ("0", "1", "0.0", "1.0"):
        return int(float(text))
    problems.append(f"{name} must be 0, 1 or empty, got {text!r}")
    return None


def _parse_ki67(text: str, problems: list[str]) -> float | None:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        problems.append(f"ki67 must be a percentage 0-100 or empty, got {text!r}")
        return None
    if not math.isfinite(value) or not 0.0 <= value <= 100.0:
        problems.append(f"ki67 must be between 0 and 100, got {text!r}")
        return None
    return value


def read_manifest(
    path: str | os.PathLike, *, check_files: bool = True, require_labels: bool = True
) -> list[ManifestRow]:
    """Read and validate a manifest; image and mask paths come back absolute.

    Rows are numbered as a spreadsheet shows them (the header is row 1). ``check_files=False``
    skips the existence check of images and masks (e.g. to inspect labels of a manifest whose
    images live elsewhere, or a cohort run that marks a missing file as that case's error).
    ``require_labels=False`` accepts a manifest of case_id,image,mask only (cohort prediction).
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: manifest not found.")
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: Excel writes a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: manifest cannot be read as UTF-8 text ({exc}).") from exc
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in (reader.fieldnames or [])]
    required = REQUIRED_COLUMNS if require_labels else REQUIRED_COLUMNS[:3]
    missing = [name for name in required if name not in header]
    if missing:
        raise BadInputError(
            f"{path.name}: missing required column(s) {', '.join(missing)} "
            f"(the header must be {','.join(REQUIRED_COLUMNS)}[,split][,patient_id])."
        )
    reader.fieldnames = header
    base = path.parent.resolve()
    rows: list[ManifestRow] = []
    errors: list[str] = []
    first_row_of: dict[str, int] = {}
    for row_number, record in enumerate(reader, start=2):
        values = {key: (value or "").strip() for key, value in record.items() if key is not None}
        if not any(values.values()):
            continue  # blank line
        problems: list[str] = []
        case_id = values["case_id"]
        if not case_id:
            problems.append("case_id is empty")
        elif any(sep in case_id for sep in "/\\") or case_id in (".", ".."):
            problems.append(f"case_id {case_id!r} is not usable as a folder name")
        elif case_id in first_row_of:
            problems.append(f"duplicate case_id {case_id!r} (first in row {first_row_of[case_id]})")
        else:
            first_row_of[case_id] = row_number
        files: dict[str, Path] = {}
        for column in ("image", "mask"):
            if not values[column]:
                problems.append(f"{column} is empty")
                continue
            resolved = (base / values[column]).resolve()
            if check_files and not resolved.exists():
                problems.append(f"{column} not found: {values[column]}")
            files[column] = resolved
        receptors = {name: _parse_receptor(name, values.get(name, ""), problems) for name in RECEPTORS}
        ki67_percent = _parse_ki67(values.get("ki67", ""), problems)
        split = values.get("split", "") or None
        if split is not None and split not in SPLITS:
            problems.append(f"split must be train, val, test or empty, got {split!r}")
        if problems:
            errors.append(f"row {row_number}: " + "; ".join(problems))
            continue
        rows.append(
            ManifestRow(
                case_id=case_id,
                image=files["image"],
                mask=files["mask"],
                ki67_percent=ki67_percent,
                split=split,
                patient_id=values.get("patient_id", ""),
                **receptors,
            )
        )
    if errors:
        raise BadInputError(f"{path.name}: " + "; ".join(errors) + ".")
    if not rows:
        raise BadInputError(f"{path.name}: the manifest has no cases.")
    return rows


def _relative(target: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(target, base)).as_posix()
    except ValueError:  # another drive on Windows: keep it absolute
        return Path(target).as_posix()


def _format_optional(value: float | None) -> str:
    return "" if value is None else format(value, "g")


def write_manifest(rows: Iterable[ManifestRow], path: str | os.PathLike) -> Path:
    """Write ``rows`` atomically, with paths relative to the manifest's folder."""
    path = Path(path)
    base = path.parent.resolve()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row.case_id,
                _relative(Path(row.image).resolve(), base),
                _relative(Path(row.mask).resolve(), base),
                _format_optional(row.er),
                _format_optional(row.pr),
                _format_optional(row.her2),
                _format_optional(row.ki67_percent),
                row.split or "",
                row.patient_id,
            ]
        )
    return write_text_atomic(path, buffer.getvalue())
