"""The competence profile as a radar chart (SVG) to bring to the pool meeting.

Built to survive a black-and-white printer: every phase differs by line pattern and marker shape,
not only by colour; the scale is printed on the first axis; the legend repeats date and profile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 940, 640
CX, CY, RADIUS = 370, 345, 200
LEGEND_X = 690

PHASE_LABELS = {"T0": "T0 (inizio)", "in_itinere": "In itinere", "ex_post": "Ex post"}

# (stroke, width, dash, marker, marker fill, area fill opacity)
STYLES = {
    "T0": ("#000000", 2.0, "7 5", "circle", "#ffffff", 0.0),
    "in_itinere": ("#4d4d4d", 2.0, "2 4", "square", "#4d4d4d", 0.0),
    "ex_post": ("#000000", 3.0, "", "triangle", "#000000", 0.08),
}


@dataclass(frozen=True)
class Series:
    phase: str
    evaluated_on: date
    scores: dict[str, Decimal]
    profile: Decimal


def _number(value: Decimal | float, decimals: int = 2) -> str:
    return f"{value:.{decimals}f}".replace(".", ",")


def _point(index: int, count: int, fraction: float) -> tuple[float, float]:
    angle = -math.pi / 2 + 2 * math.pi * index / count
    return CX + RADIUS * fraction * math.cos(angle), CY + RADIUS * fraction * math.sin(angle)


def _marker(kind: str, x: float, y: float, fill: str, stroke: str) -> str:
    if kind == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{fill}" stroke="{stroke}" stroke-width="1.6"/>'
    if kind == "square":
        return f'<rect x="{x - 4.5:.1f}" y="{y - 4.5:.1f}" width="9" height="9" fill="{fill}" stroke="{stroke}" stroke-width="1.2"/>'
    points = f"{x:.1f},{y - 6:.1f} {x + 5.5:.1f},{y + 4.5:.1f} {x - 5.5:.1f},{y + 4.5:.1f}"
    return f'<polygon points="{points}" fill="{fill}" stroke="{stroke}" stroke-width="1.2"/>'


def _label(index: int, count: int, text: str) -> str:
    x, y = _point(index, count, 1.16)
    anchor = "middle" if abs(x - CX) < 20 else ("start" if x > CX else "end")
    words = text.split()
    lines, line = [], ""
    for word in words:
        if line and len(line) + len(word) > 14:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    y -= 7 * (len(lines) - 1)
    spans = "".join(
        f'<tspan x="{x:.1f}" dy="{0 if i == 0 else 15}">{escape(part)}</tspan>'
        for i, part in enumerate(lines)
    )
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="14" font-weight="600">{spans}</text>'


def render(
    *,
    competences: list[tuple[str, str]],
    scale_min: Decimal,
    scale_max: Decimal,
    series: list[Series],
    instrument_title: str,
    generated_on: date,
) -> str:
    """`competences`: (key, short Italian label) in the instrument's order."""
    count = len(competences)
    span = float(scale_max - scale_min)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        'font-family="DejaVu Sans, Arial, Helvetica, sans-serif" role="img" aria-labelledby="title desc">',
        '<title id="title">Profilo di competenze</title>',
        f'<desc id="desc">Radar delle {count} competenze, una linea per fase di valutazione.</desc>',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        '<text x="30" y="42" font-size="22" font-weight="700">Profilo di competenze</text>',
        f'<text x="30" y="66" font-size="13" fill="#333">{escape(instrument_title)} · scala '
        f"{_number(scale_min, 0)}–{_number(scale_max, 0)}</text>",
    ]
    # Rings at each whole step of the scale, labelled on the first axis.
    steps = int(span)
    for step in range(1, steps + 1):
        ring = " ".join(f"{x:.1f},{y:.1f}" for x, y in (_point(i, count, step / steps) for i in range(count)))
        parts.append(f'<polygon points="{ring}" fill="none" stroke="#9a9a9a" stroke-width="0.8"/>')
        lx, ly = _point(0, count, step / steps)
        parts.append(
            f'<text x="{lx - 8:.1f}" y="{ly + 4:.1f}" font-size="11" fill="#444" text-anchor="end">{_number(scale_min + step, 0)}</text>'
        )
    for index, (_, short) in enumerate(competences):
        x, y = _point(index, count, 1.0)
        parts.append(
            f'<line x1="{CX}" y1="{CY}" x2="{x:.1f}" y2="{y:.1f}" stroke="#777" stroke-width="0.8"/>'
        )
        parts.append(_label(index, count, short))
    # One outline per evaluation; later phases drawn last so they stay on top.
    for item in series:
        stroke, width, dash, marker, marker_fill, opacity = STYLES.get(item.phase, STYLES["in_itinere"])
        points = [
            _point(i, count, max(0.0, min(1.0, float(item.scores[key] - scale_min) / span)))
            for i, (key, _) in enumerate(competences)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<polygon points="{path}" fill="#000000" fill-opacity="{opacity}" stroke="{stroke}" '
            f'stroke-width="{width}"{dash_attr} stroke-linejoin="round"/>'
        )
        parts.extend(_marker(marker, x, y, marker_fill, stroke) for x, y in points)
    # Legend: pattern, marker, phase, date, profile.
    top = 130
    parts.append(f'<text x="{LEGEND_X}" y="{top - 24}" font-size="14" font-weight="700">Valutazioni</text>')
    for row, item in enumerate(series):
        stroke, width, dash, marker, marker_fill, _ = STYLES.get(item.phase, STYLES["in_itinere"])
        y = top + row * 58
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line x1="{LEGEND_X}" y1="{y}" x2="{LEGEND_X + 50}" y2="{y}" stroke="{stroke}" stroke-width="{width}"{dash_attr}/>'
        )
        parts.append(_marker(marker, LEGEND_X + 25, y, marker_fill, stroke))
        parts.append(
            f'<text x="{LEGEND_X + 62}" y="{y + 5}" font-size="14" font-weight="600">{escape(PHASE_LABELS.get(item.phase, item.phase))}</text>'
        )
        parts.append(
            f'<text x="{LEGEND_X + 62}" y="{y + 23}" font-size="12" fill="#333">{item.evaluated_on.strftime("%d/%m/%Y")} · '
            f"profilo {_number(item.profile)}</text>"
        )
    if not series:
        parts.append(
            f'<text x="{LEGEND_X}" y="130" font-size="13" fill="#333">Nessuna valutazione registrata.</text>'
        )
    parts.append(
        f'<text x="30" y="{HEIGHT - 20}" font-size="11" fill="#555">Generato da snodo il '
        f"{generated_on.strftime('%d/%m/%Y')} · documento riservato</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
