"""The cost chart: both monthly costs against the request rate, break-even marked, as SVG
(pure: data in, text out; any browser or image viewer shows it)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

__all__ = ["svg"]

_W, _H = 720, 420
_LEFT, _RIGHT, _TOP, _BOTTOM = 80, 30, 50, 60


def _ticks(top: float, count: int = 5) -> list[float]:
    if top <= 0:
        return [0.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(int(top / step) + 1)]


def svg(
    points: Sequence[tuple[float, float, float]],
    break_even_rps: float | None,
    title: str,
) -> str:
    """An SVG line chart of ``(rps, classic USD, managed USD)`` points."""
    if not points:
        raise ValueError("no points to draw")
    max_x = max(p[0] for p in points) or 1.0
    max_y = max(max(p[1], p[2]) for p in points) or 1.0
    width, height = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def x(value: float) -> float:
        return _LEFT + width * value / max_x

    def y(value: float) -> float:
        return _TOP + height * (1 - value / max_y)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
        f'<text x="{_W / 2}" y="24" text-anchor="middle" font-size="15">{escape(title)}</text>',
        f'<line x1="{_LEFT}" y1="{_TOP + height}" x2="{_LEFT + width}" y2="{_TOP + height}" '
        'stroke="black"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + height}" stroke="black"/>',
    ]
    for tick in _ticks(max_x):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{_TOP + height + 18}" text-anchor="middle">{tick:g}</text>'
        )
    for tick in _ticks(max_y):
        parts.append(
            f'<line x1="{_LEFT}" y1="{y(tick):.1f}" x2="{_LEFT + width}" y2="{y(tick):.1f}" '
            'stroke="#ddd"/>'
            f'<text x="{_LEFT - 8}" y="{y(tick) + 4:.1f}" text-anchor="end">${tick:,.0f}</text>'
        )
    parts.append(
        f'<text x="{_LEFT + width / 2}" y="{_H - 18}" text-anchor="middle">'
        "mean requests per second</text>"
        f'<text x="18" y="{_TOP + height / 2}" text-anchor="middle" '
        f'transform="rotate(-90 18 {_TOP + height / 2})">USD per month</text>'
    )
    for index, (name, colour) in enumerate(
        (("classic Lambda", "#d62728"), ("Managed Instances", "#1f77b4")), start=1
    ):
        line = " ".join(f"{x(p[0]):.1f},{y(p[index]):.1f}" for p in points)
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>'
            f'<text x="{_LEFT + 10}" y="{_TOP + 16 * index}" fill="{colour}">{name}</text>'
        )
    if break_even_rps is not None and break_even_rps <= max_x:
        bx = x(break_even_rps)
        parts.append(
            f'<line x1="{bx:.1f}" y1="{_TOP}" x2="{bx:.1f}" y2="{_TOP + height}" '
            'stroke="#555" stroke-dasharray="4 4"/>'
            f'<text x="{bx + 6:.1f}" y="{_TOP + 14}">break-even: {break_even_rps:.3g} req/s</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
