"""A small inline-SVG line plot: a metric against the number of shots, mean +- std over trials.

Shot counts are placed evenly (0, 4, 8, 16, 32 are read as categories, as in the papers'
tables); each series is a line with error bars, and each point has a tooltip.
"""

from __future__ import annotations

import html
import math
from typing import Sequence

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
WIDTH, HEIGHT = 420, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 120, 28, 40

Point = tuple[int, float, float]  # (shots, mean, std)


def nice_max(value: float) -> float:
    """The smallest 1 / 2 / 2.5 / 5 x 10^k at or above value (at least 1)."""
    if value <= 1:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * exponent >= value:
            return step * exponent
    return 10 * exponent


def line_plot(title: str, series: dict[str, Sequence[Point]]) -> str:
    """An <svg> element plotting each named series of (shots, mean, std)."""
    xs = sorted({x for points in series.values() for x, _, _ in points})
    if not xs:
        return ""
    top = nice_max(max((m + (s if math.isfinite(s) else 0)) for pts in series.values() for _, m, s in pts))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: int) -> float:
        return LEFT + (plot_w * (xs.index(x) + 0.5) / len(xs))

    def py(y: float) -> float:
        return TOP + plot_h * (1 - max(0.0, min(y, top)) / top)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{html.escape(title)}">',
           f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
           f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>']
    for i in range(5):                                          # y grid and labels
        value = top * i / 4
        y = py(value)
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{value:g}</text>')
    for x in xs:                                                # x labels
        out.append(f'<text x="{px(x):.1f}" y="{TOP + plot_h + 16}" font-size="11" text-anchor="middle">{x}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" font-size="11" text-anchor="middle">shots</text>')
    for k, (name, points) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        points = sorted(points)
        path = " ".join(f"{'M' if j == 0 else 'L'}{px(x):.1f},{py(m):.1f}" for j, (x, m, _) in enumerate(points))
        out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2" class="series"/>')
        for x, m, s in points:
            if s > 0:
                out.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{py(m - s):.1f}" y2="{py(m + s):.1f}" '
                           f'stroke="{color}"/>')
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(m):.1f}" r="3.5" fill="{color}">'
                       f'<title>{html.escape(name)}, {x} shots: {m:.2f} ± {s:.2f}</title></circle>')
        ly = TOP + 10 + 16 * k
        out.append(f'<line x1="{WIDTH - RIGHT + 10}" x2="{WIDTH - RIGHT + 26}" y1="{ly}" y2="{ly}" '
                   f'stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{WIDTH - RIGHT + 30}" y="{ly + 4}" font-size="11">{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)
