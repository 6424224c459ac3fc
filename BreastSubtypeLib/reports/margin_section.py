"""The report's margin-profile section: the intensity profile across the tumour margin as a chart
(inline SVG: no script, no file) and, per call, the profile numbers that pushed it most.

:func:`evidence_rows` and :func:`evidence_legend` are also what the Slicer module's and the web app's
collapsed "Margin profile evidence" panels show, so the report and both front ends name and format
the same numbers the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import NamedTuple

from BreastSubtypeLib.preprocessing.margin_profile import PERITUMORAL_SHELLS_MM, RIM_SHELLS_MM, shell_name
from BreastSubtypeLib.tasks import TASK_TITLES

PANEL_TITLE = "Margin profile evidence"


def _shell_title(region: str, shell: tuple[float, float], side: str) -> str:
    return f"{region} {shell[0]:g}-{shell[1]:g} mm {side} the margin: mean signal intensity"


# Feature name (preprocessing.margin_profile.MARGIN_PROFILE_FEATURES) -> the words a radiologist reads;
# a number without a title here keeps its feature name.
MARGIN_NUMBER_TITLES: dict[str, str] = {
    **{shell_name("rim", s): _shell_title("Rim", s, "inside") for s in RIM_SHELLS_MM},
    "core_mean": "Core: mean signal intensity",
    "core_sd": "Core: signal heterogeneity (SD)",
    "core_p10": "Core: darkest tenth (10th percentile)",
    "core_p90": "Core: brightest tenth (90th percentile)",
    **{
        shell_name("peritumoral", s): _shell_title("Peritumoral", s, "outside") for s in PERITUMORAL_SHELLS_MM
    },
    "margin_radius_cv": "Margin irregularity (radius variation)",
    "margin_max_to_mean_radius": "Margin spiculation (longest / mean radius)",
    "surface_to_volume_ratio": "Margin lobulation (surface / volume)",
    "tumour_local_texture": "Tumour: local texture (fine heterogeneity)",
    "rim_core_ratio": "Core enhancement as a fraction of the rim's (washout, rim enhancement)",
    "peritumoral_0_1mm_contrast": "Peritumoral 0-1 mm enhancement relative to the rim (oedema)",
    "peritumoral_1_2mm_contrast": "Peritumoral 1-2 mm enhancement relative to the rim (oedema)",
    "peritumoral_entropy": "Peritumoral signal spread (entropy relative to the rim)",
    "tumour_profile_texture": "Tumour: texture around its rim-to-core profile (heterogeneity)",
    "peritumoral_near_drop": "Peritumoral drop from 0-1 mm to 2-3 mm, per direction, relative to the rim (oedema)",
    "peritumoral_amplitude": "Peritumoral enhancement fading from the margin, relative to the tumour's (oedema)",
    "tumour_to_rim_signal": "Tumour signal as a fraction of its rim's (central washout, necrosis)",
    "peritumoral_homogeneity": "Peritumoral homogeneity (how alike neighbouring voxels are)",
    "peritumoral_roughness": "Peritumoral texture (neighbour-to-neighbour differences relative to the rim)",
}


class EvidenceRow(NamedTuple):
    """One margin number behind one call, as text: the call, the number's name, its value and its
    evidence (signed, logit units)."""

    call: str
    number: str
    value: str
    evidence: str


def _strongest(numbers: Mapping[str, float], count: int) -> list[tuple[str, float]]:
    """The ``count`` (name, evidence) pairs of largest |evidence|; ties keep their order."""
    return sorted(numbers.items(), key=lambda item: -abs(item[1]))[:count]


def evidence_rows(margin: Mapping, count: int = 3) -> list[EvidenceRow]:
    """For each call of ``prediction.json``'s ``margin_profile`` (its order), the ``count`` numbers
    that pushed it most, strongest first (none when the prediction has no evidence)."""
    values = (margin or {}).get("values") or {}
    rows = []
    for task, numbers in ((margin or {}).get("evidence") or {}).items():
        for name, push in _strongest(numbers, count):
            value = values.get(name)
            rows.append(
                EvidenceRow(
                    TASK_TITLES.get(task, task),
                    MARGIN_NUMBER_TITLES.get(name, name),
                    "" if value is None else f"{float(value):.3f}",
                    f"{float(push):+.2f}",
                )
            )
    return rows


def evidence_legend(demonstration: bool = True) -> str:
    """The one line under the evidence rows: what the sign means (``inference.explain``: evidence
    carries the call's sign) and, for the demonstration model, where it was trained."""
    legend = (
        "Evidence: the number's push in logit units; + supports the call made (positive or negative, "
        "Ki-67 high or low), - argues against it."
    )
    if demonstration:
        legend += " Demonstration model trained on synthetic phantoms: not for clinical use."
    return legend


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
    bar and the report button below the fold (the browser flow test checks they stay in view); the
    front ends show :func:`evidence_rows` in a collapsed panel of their own instead."""
    strongest = _strongest(numbers, count)
    return ", ".join(f"{MARGIN_NUMBER_TITLES.get(name, name)} {value:+.2f}" for name, value in strongest)


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
