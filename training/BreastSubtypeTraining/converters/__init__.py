"""Converters from public DCE-MRI collections to a manifest (SPEC §7).

``convert_duke`` (Duke-Breast-Cancer-MRI, TCIA) and ``convert_mamamia`` (MAMA-MIA) write a manifest
of the cases they can use and return which patients they left out and why.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

from BreastSubtypeLib.errors import BadInputError


@dataclass(frozen=True)
class ConversionResult:
    manifest: Path
    n_cases: int
    skipped: dict[str, str] = field(default_factory=dict)  # patient -> why it is not in the manifest


def receptor_status(value) -> int | None:
    """0/1 from a spreadsheet cell (``1``, ``1.0``, ``"1"``); anything else (2 = borderline, NA) is unknown."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    if math.isfinite(number) and number in (0.0, 1.0):
        return int(number)
    return None


def read_xlsx_table(
    path: Path, key_column: str, required: tuple[str, ...], *, max_header_rows: int = 3
) -> list[dict[str, object]]:
    """Data rows of the first sheet whose header (within its first ``max_header_rows`` rows) has ``key_column``.

    Column names are matched case-insensitively; rows come back keyed by lower-case column name, the
    first column of a repeated name winning.
    Rows up to the header row are not data (Duke's group-name row above it), and rows with an empty
    key are skipped (Duke's row of value codes under it).
    """
    import openpyxl  # only the converters need it

    if not path.is_file():
        raise BadInputError(f"{path}: clinical spreadsheet not found.")
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several unrelated types for a non-xlsx file
        raise BadInputError(f"{path}: not a readable .xlsx spreadsheet ({type(exc).__name__}).") from None
    key = key_column.lower()
    try:
        for sheet in workbook.worksheets:
            rows = sheet.iter_rows(values_only=True)
            for header_row in itertools.islice(rows, max_header_rows):
                header = [str(cell).strip().lower() if cell is not None else "" for cell in header_row]
                if key not in header:
                    continue
                missing = [name for name in required if name.lower() not in header]
                if missing:
                    raise BadInputError(
                        f"{path}: the sheet {sheet.title!r} has no {', '.join(missing)} column(s)."
                    )
                table = []
                for row in rows:
                    record: dict[str, object] = {}
                    for name, value in zip(header, row):
                        if name:
                            record.setdefault(name, value)  # a repeated name (another side's value) is not it
                    if record.get(key) not in (None, ""):
                        table.append(record)
                return table
    finally:
        workbook.close()
    raise BadInputError(f"{path}: no sheet has a {key_column!r} column in its first {max_header_rows} rows.")
