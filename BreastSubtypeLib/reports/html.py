"""``report.html``: one self-contained page (images embedded as base64, no scripts, no external
links) that a radiologist can open anywhere, archive, or attach to a study."""

from __future__ import annotations

import base64
from html import escape

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
    parts.append(_row("Ki-67 proliferation index", f"{summary['ki67_percent']:.1f} %", "", ""))
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
            "<p class='small'>Colour: inferno (dark = low, bright = high attention). Outlines: core (red), "
            "rim (yellow), peritumoral (blue). Radiological orientation.</p>"
        )
        for view, png in overlays_png.items():
            data = base64.b64encode(png).decode("ascii")
            parts.append(
                f"<figure><img alt='{escape(view)} overlay' src='data:image/png;base64,{data}'>"
                f"<figcaption>{escape(view)}</figcaption></figure>"
            )

    if summary.get("warnings"):
        parts.append("<h2>Warnings</h2><ul>")
        parts.extend(f"<li>{escape(str(warning))}</li>" for warning in summary["warnings"])
        parts.append("</ul>")

    parts.append("<h2>Model</h2><table>")
    parts.append(_row("Model", f"{escape(str(model['id']))} version {escape(str(model['version']))}"))
    for key, label in (
        ("description", "Description"),
        ("intended_use", "Intended use"),
        ("training_data", "Training data"),
    ):
        if card.get(key):
            parts.append(_row(label, escape(str(card[key]))))
    metrics = card.get("metrics")
    if isinstance(metrics, dict) and metrics:
        shown = "; ".join(f"{escape(str(k))}: {escape(str(v))}" for k, v in metrics.items())
        parts.append(_row("Validation metrics", shown))
    parts.append("</table>")

    geometry = summary["input"]
    timings = ", ".join(f"{escape(k)} {v:.2f} s" for k, v in summary.get("timings_s", {}).items())
    parts.append(
        f"<p class='small'>Input grid {geometry['size']} voxels at {geometry['spacing_mm']} mm. Timings: {timings}.</p>"
    )
    parts.append("</body></html>\n")
    return "\n".join(parts)
