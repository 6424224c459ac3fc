"""The results table: one row per finding, in the words a radiologist reads in a report.

Built from the ``prediction.json`` dictionary the CLI writes (SPEC §5), so the Slicer module, the
web app and the HTML report show the same numbers. Values are text so one column can hold
probabilities, percent and the subtype name; numbers are formatted with fixed decimals.

The margin-profile evidence (each call's strongest margin numbers) has a table of its own, shown
in a collapsed panel: as rows of the results table it pushed the colour bar below the fold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from BreastSubtypeLib.reports import margin_section

COLUMNS = ("Finding", "Value", "Threshold", "Call")
EVIDENCE_COLUMNS = ("Call", "Margin number", "Value", "Evidence")
# Field names of result_rows()'s and evidence_rows()' items -> column header, for front ends that
# address cells by name (the web app's tables).
RESULT_HEADERS = dict(zip(("finding", "value", "threshold", "call"), COLUMNS, strict=True))
EVIDENCE_HEADERS = dict(zip(margin_section.EvidenceRow._fields, EVIDENCE_COLUMNS, strict=True))
EVIDENCE_ATTRIBUTE = "BreastSubtype.MarginEvidence"
RECEPTORS = (("er", "ER"), ("pr", "PR"), ("her2", "HER2"))
DEMONSTRATION_WARNING = "Demonstration model trained on synthetic phantoms: not for clinical use."


def _number(value: Any, digits: int) -> str:
    return "" if value is None else f"{float(value):.{digits}f}"


def _ki67_percent(prediction: Mapping[str, Any]) -> Any:
    value = prediction.get("ki67_percent")
    return value.get("value") if isinstance(value, Mapping) else value


def result_rows(prediction: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """Rows ``(finding, value, threshold, call)`` of a prediction dictionary."""
    rows: list[tuple[str, str, str, str]] = []
    for key, label in RECEPTORS:
        task = prediction.get(key) or {}
        call = "" if task.get("positive") is None else ("positive" if task["positive"] else "negative")
        rows.append(
            (
                f"{label} probability",
                _number(task.get("probability"), 3),
                _number(task.get("threshold"), 3),
                call,
            )
        )
    rows.append(("Ki-67 (%)", _number(_ki67_percent(prediction), 1), "", ""))
    subtype = prediction.get("subtype") or {}
    if subtype:
        certainty = "uncertain" if subtype.get("uncertain") else "confident"
        rows.append(
            (
                "Surrogate subtype",
                str(subtype.get("name", "")),
                str(subtype.get("scheme", "")),
                f"{certainty} (p = {_number(subtype.get('probability'), 2)})"
                if subtype.get("probability") is not None
                else certainty,
            )
        )
    for region, weight in (prediction.get("roi_weights") or {}).items():
        rows.append((f"ROI weight {region}", _number(weight, 3), "", ""))
    model = prediction.get("model") or {}
    if model:
        rows.append(("Model", f"{model.get('id', '')} {model.get('version', '')}".strip(), "", ""))
        if model.get("demonstration"):  # the one source: predict() keeps it out of the case's warnings
            rows.append(("Warning", DEMONSTRATION_WARNING, "", ""))
    for warning in prediction.get("warnings") or []:
        rows.append(("Warning", str(warning), "", ""))
    return rows


def evidence_rows(prediction: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """Rows ``(call, margin number, value, evidence)``: each call's three strongest margin numbers
    (``reports.margin_section.evidence_rows``, the report's names and formats)."""
    return [tuple(row) for row in margin_section.evidence_rows(prediction.get("margin_profile") or {})]


def fill_results_table(table_node, prediction: Mapping[str, Any]) -> None:
    """Replace the contents of ``table_node`` with the results of ``prediction``."""
    _fill_table(table_node, COLUMNS, result_rows(prediction))


def fill_evidence_table(table_node, prediction: Mapping[str, Any]) -> None:
    """Replace the contents of ``table_node`` with the margin evidence of ``prediction``."""
    _fill_table(table_node, EVIDENCE_COLUMNS, evidence_rows(prediction))


def _fill_table(table_node, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    import vtk

    table = table_node.GetTable()
    was_modifying = table_node.StartModify()
    table.Initialize()
    for column_index, name in enumerate(columns):
        column = vtk.vtkStringArray()
        column.SetName(name)
        column.SetNumberOfValues(len(rows))
        for row_index, row in enumerate(rows):
            column.SetValue(row_index, row[column_index])
        table.AddColumn(column)
    table_node.SetUseColumnTitleAsColumnHeader(True)
    table_node.Modified()
    table_node.EndModify(was_modifying)


def add_results_table(scene, prediction: Mapping[str, Any], name: str):
    """A new ``vtkMRMLTableNode`` holding the results of ``prediction``."""
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    fill_results_table(node, prediction)
    return node


def add_evidence_table(scene, prediction: Mapping[str, Any], name: str):
    """A new ``vtkMRMLTableNode`` holding the margin evidence of ``prediction`` (None without any)."""
    if not evidence_rows(prediction):
        return None
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    node.SetAttribute(EVIDENCE_ATTRIBUTE, "1")  # the module's evidence selector lists these only
    fill_evidence_table(node, prediction)
    return node


def table_rows(table_node) -> list[tuple[str, ...]]:
    """The table's cells as text, row by row (what a user would copy out of the table view)."""
    table = table_node.GetTable()
    return [
        tuple(table.GetColumn(c).GetValue(r) for c in range(table.GetNumberOfColumns()))
        for r in range(table.GetNumberOfRows())
    ]
