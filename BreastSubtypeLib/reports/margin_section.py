"""The report's margin-profile section: the intensity profile across the tumour margin as a chart
(inline SVG: no script, no file) and, per call, the profile numbers that pushed it most."""

from __future__ import annotations

from html import escape

from BreastSubtypeLib.preprocessing.margin_profile import PERITUMORAL_SHELLS_MM, RIM_SHELLS_MM, shell_name
from BreastSubtypeLib.tasks import TASK_TITLES

_WIDTH, _HEIGHT, _PAD = 420, 220, 40


def profile_points(values: dict[str, float]) -> list[tuple[float, float]]:
    """(signed distance from the margin in mm, mean intensity) per shell: rim shells at minus their
    depth, peritumoral shells at plus their distance (each at its shell's middle), outward order."""
    points = []
    for region, shells, sign in (("rim", RIM_SHELLS_MM, -1.0), ("peritumoral", PERITUMORAL_SHELLS_MM, 1.0)):
        for shell in shells:
            name = shell_name(region, shell)
            if name in values:
                points.append((sign * (shell[0] + shell[1]) / 2, float(values[name])))
    return sorted(points)


def strongest_evidence(numbers: dict[str, float], count: int = 3) -> str:
    """The ``count`` margin numbers that pushed a call most, as text ("name +0.42, ...").

    Kept out of the Slicer and web results tables on purpose: four more long rows push the colour
    bar and the report button below the fold (the browser flow test checks they stay in view)."""
    strongest = sorted(numbers.items(), key=lambda item: -abs(item[1]))[:count]
    return ", ".join(f"{name} {value:+.2f}" for name, value in strongest)


def _svg_chart(points: list[tuple[float, float]]) -> str:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_low, x_high = min(xs + [-3.0]), max(xs + [6.0])
    y_low, y_high = min(ys + [0.0]), max(ys + [1.0])

    def to_px(x, y):
        px = _PAD + (x - x_low) / (x_high - x_low) * (_WIDTH - 2 * _PAD)
        py = _HEIGHT - _PAD - (y - y_low) / (y_high - y_low) * (_HEIGHT - 2 * _PAD)
        return px, py

    line = " ".join("{:.1f},{:.1f}".format(*to_px(x, y)) for x, y in points)
    zero_x, _ = to_px(0.0, y_low)
    dots = "".join("<circle cx='{:.1f}' cy='{:.1f}' r='3'/>".format(*to_px(x, y)) for x, y in points)
    return (
        f"<svg role='img' aria-label='intensity profile across the tumour margin' width='{_WIDTH}' "
        f"height='{_HEIGHT}' xmlns='http://www.w3.org/2000/svg' font-size='11'>"
        f"<line x1='{zero_x:.1f}' y1='{_PAD / 2}' x2='{zero_x:.1f}' y2='{_HEIGHT - _PAD}' stroke='#999' "
        "stroke-dasharray='4'/>"
        f"<text x='{zero_x + 4:.1f}' y='{_PAD / 2 + 10}'>tumour margin</text>"
        f"<polyline fill='none' stroke='#c03' stroke-width='2' points='{line}'/><g fill='#c03'>{dots}</g>"
        f"<text x='{_PAD}' y='{_HEIGHT - 8}'>inside (rim) {x_low:g} mm</text>"
        f"<text x='{_WIDTH - _PAD}' y='{_HEIGHT - 8}' text-anchor='end'>outside {x_high:g} mm</text>"
        f"<text x='4' y='{_PAD / 2}'>{y_high:.2f}</text><text x='4' y='{_HEIGHT - _PAD}'>{y_low:.2f}</text>"
        "</svg>"
    )


def margin_section(margin: dict) -> list[str]:
    """HTML parts for ``prediction.json``'s ``margin_profile`` (nothing when absent)."""
    values = (margin or {}).get("values") or {}
    points = profile_points(values)
    if not points:
        return []
    parts = [
        "<h2>Intensity profile across the tumour margin</h2>",
        "<p class='small'>Mean normalised intensity in millimetre shells, measured on the acquired "
        "voxels (finer than the network's crop): negative distances lie inside the rim, positive ones in "
        "the peritumoral tissue. The network receives these numbers beside the image.</p>",
        _svg_chart(points),
    ]
    evidence = margin.get("evidence") or {}
    if evidence:
        parts.append("<table><tr><th>Call</th><th>Margin numbers that pushed it most (logit units)</th></tr>")
        for task, numbers in evidence.items():
            shown = escape(strongest_evidence(numbers))
            parts.append(f"<tr><td>{escape(TASK_TITLES.get(task, task))}</td><td>{shown}</td></tr>")
        parts.append("</table>")
        parts.append(f"<p class='small'>{escape(str(margin.get('meaning', '')))}</p>")
    return parts
