"""``report.html``: one self-contained page (images embedded as base64, no scripts, no external
links) that a radiologist can open anywhere, archive, or attach to a study."""

from __future__ import annotations

import base64
from html import escape

from BreastSubtypeLib.reports.margin_section import margin_section

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1200px;color:#222}
h1{font-size:1.5em} h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccc;padding:.3em .8em;text-align:left}
th{background:#f3f3f3} .num{text-align:right;font-variant-numeric:tabular-nums}
.warning{background:#fff3cd;border:2px solid #d39e00;padding:1em;font-weight:600;margin:1em 0}
.uncertain{color:#a15c00} figure{display:inline-block;margin:.5em} figcaption{text-align:center}
img{width:360px;height:360px;image-rendering:auto;border:1px solid #999}
.small{color:#555;font-size:.9em}
"""


def _percent(value: float) -> str:
    return f"{100.0 * value:.1f} %"


def _row(*cells: str, header: bool = False) -> str:
    tag = "th" if header else "td"
    return "<tr>" + "".join(f"<{tag}>{cell}</{tag}>" for cell in cells) + "</tr>"


def _metrics_table(metrics) -> list[str]:
    """The model card's headline figures: AUC with its 95 % CI per receptor, Ki-67 MAE, per split."""
    if not isinstance(metrics, dict):
        return []
    rows = []
    for split in ("test", "val"):
        figures = metrics.get(split)
        if not isinstance(figures, dict):
            continue
        for task, label in (("er", "ER"), ("pr", "PR"), ("her2", "HER2")):
            task_figures = figures.get(task) or {}
            if "auc" in task_figures:
                ci = ""
                if "ci_low" in task_figures and "ci_high" in task_figures:
                    ci = f" ({task_figures['ci_low']:.2f}-{task_figures['ci_high']:.2f})"
                rows.append(_row(escape(split), f"{label} AUC", f"{task_figures['auc']:.3f}{ci}"))
        ki67 = figures.get("ki67_percent") or {}
        if "mae" in ki67:
            rows.append(_row(escape(split), "Ki-67 MAE", f"{ki67['mae']:.1f} points"))
    if not rows:
        return []
    header = _row("Split", "Figure", "Value (95 % CI)", header=True)
    return [
        "<h3>Model performance on its held-out data, from its model card (not on this case)</h3><table>",
        header,
        *rows,
        "</table>",
    ]


def render_report(summary: dict, overlays_png: dict[str, bytes], model_card: dict | None = None) -> str:
    """HTML text for ``summary`` (the prediction.json content) and PNG bytes per view."""
    model = summary["model"]
    card = model_card or {}
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>BreastSubtype report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>BreastSubtype: molecular biomarkers from post-contrast DCE-MRI</h1>",
    ]
    if model.get("demonstration"):
        parts.append(
            "<div class='warning'>DEMONSTRATION MODEL: trained on synthetic phantoms only. These numbers "
            "show how the software works; they say nothing about this patient. Not for clinical use.</div>"
        )
    else:
        parts.append("<div class='warning'>Research use only; not a medical device.</div>")

    parts.append("<h2>Results</h2><table>")
    parts.append(_row("Biomarker", "Probability positive", "Operating threshold", "Call", header=True))
    for task, label in (
        ("er", "Estrogen receptor (ER)"),
        ("pr", "Progesterone receptor (PR)"),
        ("her2", "HER2"),
    ):
        result = summary[task]
        call = "positive" if result["positive"] else "negative"
        parts.append(
            _row(label, f"<span class='num'>{_percent(result['probability'])}</span>",
                 f"{_percent(result['threshold'])}", call)
        )  # fmt: skip
    parts.append("</table>")
    # Ki-67 is an estimated index, not a probability of positivity: its own table and heading.
    parts.append("<table>" + _row("Proliferation", "Estimated index", header=True))
    parts.append(_row("Ki-67 proliferation index", f"{summary['ki67_percent']:.1f} %"))
    parts.append("</table>")

    subtype = summary["subtype"]
    hedge = (
        " <span class='uncertain'>(uncertain: probabilities near thresholds)</span>"
        if subtype.get("uncertain")
        else ""
    )
    parts.append(
        f"<p><b>Surrogate subtype</b> ({escape(str(subtype.get('scheme', '')))}): "
        f"{escape(str(subtype.get('name', '')))}"
        + (
            f", probability {_percent(subtype['probability'])}"
            if subtype.get("probability") is not None
            else ""
        )
        + hedge
        + "</p>"
    )
    alternatives = subtype.get("alternatives") or {}
    if isinstance(alternatives, list):  # [[name, p], ...] or [{"name", "probability"}, ...]
        alternatives = dict(
            (a.get("name"), a.get("probability")) if isinstance(a, dict) else tuple(a) for a in alternatives
        )
    if alternatives:
        parts.append("<table>" + _row("Subtype", "Probability", header=True))
        for name, probability in sorted(alternatives.items(), key=lambda item: -(item[1] or 0.0)):
            shown = _percent(probability) if probability is not None else ""
            parts.append(_row(escape(str(name)), shown))
        parts.append("</table>")
    if subtype.get("reason"):
        parts.append(f"<p class='small'>{escape(str(subtype['reason']))}</p>")

    parts.append("<h2>Regions of interest</h2><table>")
    parts.append(_row("Region", "Volume", "Weight the model gave it", header=True))
    for region in ("core", "rim", "peritumoral"):
        volume = summary.get("roi_volumes_ml", {}).get(region)
        weight = summary["roi_weights"][region]
        parts.append(_row(region, f"{volume:.2f} ml" if volume is not None else "", f"{weight:.2f}"))
    parts.append("</table>")

    if overlays_png:
        parts.append("<h2>Fused attention through the lesion centre</h2>")
        parts.append(
            "<p class='small'>Attention is drawn only on core, rim and peritumoral tissue, where it weighs "
            "the network's pooling. Colour: inferno (dark = low, bright = high attention). Outlines: core (red), "
            "rim (yellow), peritumoral (blue). Radiological orientation.</p>"
        )
        for view, png in overlays_png.items():
            data = base64.b64encode(png).decode("ascii")
            parts.append(
                f"<figure><img alt='{escape(view)} overlay' src='data:image/png;base64,{data}'>"
                f"<figcaption>{escape(view)}</figcaption></figure>"
            )

    parts.extend(margin_section(summary.get("margin_profile") or {}))

    notes = summary.get("map_notes") or {}
    if notes:
        parts.append("<h2>What each map shows</h2><table>")
        parts.append(_row("Map", "Meaning", header=True))
        for name, note in notes.items():
            meaning = escape(str(note.get("meaning", "")))
            if note.get("empty"):
                meaning += " <strong>Empty: no evidence anywhere in the lesion's crop.</strong>"
            parts.append(_row(escape(name), meaning))
        parts.append("</table>")

    if summary.get("warnings"):
        parts.append("<h2>Warnings</h2><ul>")
        parts.extend(f"<li>{escape(str(warning))}</li>" for warning in summary["warnings"])
        parts.append("</ul>")

    parts.append("<h2>Model</h2><table>")
    parts.append(_row("Model", f"{escape(str(model['id']))} version {escape(str(model['version']))}"))
    for key, label in (("description", "Description"), ("intended_use", "Intended use")):
        if card.get(key):
            parts.append(_row(label, escape(str(card[key]))))
    training_data = card.get("training_data")
    if isinstance(training_data, dict):
        cases = {name: split.get("cases") for name, split in training_data.get("splits", {}).items()}
        shown = ", ".join(f"{escape(str(n))} {escape(name)}" for name, n in cases.items() if n is not None)
        text = escape(str(training_data.get("description", "")))
        parts.append(_row("Training data", f"{text} ({shown} cases)" if shown else text))
    elif training_data:
        parts.append(_row("Training data", escape(str(training_data))))
    parts.append("</table>")
    parts.extend(_metrics_table(card.get("metrics")))

    geometry = summary["input"]
    timings = ", ".join(f"{escape(k)} {v:.2f} s" for k, v in summary.get("timings_s", {}).items())
    parts.append(
        f"<p class='small'>Input grid {geometry['size']} voxels at {geometry['spacing_mm']} mm. Timings: {timings}.</p>"
    )
    parts.append("</body></html>\n")
    return "\n".join(parts)
