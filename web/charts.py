"""Charts drawn on the server as SVG: nothing to load or run in the browser, they print, and the
Content-Security-Policy stays strict. Pure functions of numbers to markup; every text escaped.
Colours and shapes carry meaning twice: a level is a colour and a word in the title."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

LEVEL_COLOURS = {"ok": "#2e7d32", "warning": "#b26a00", "critical": "#b3261e", "": "#8a9099", None: "#8a9099"}


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _scale(low: float, high: float, size: float, pad: float) -> callable:
    span = (high - low) or 1.0
    return lambda v: pad + (v - low) / span * (size - 2 * pad)


def sparkline(values: Sequence[float | None], *, width: int = 120, height: int = 28, label: str = "") -> str:
    """A small line of the latest values (None is a gap), the last point marked."""
    found = _finite(values)
    if len(found) < 2:
        return f'<svg class="spark" role="img" aria-label="{escape(label)}: not enough runs yet" width="{width}" height="{height}"></svg>'
    low, high = min(found), max(found)
    x = _scale(0, len(values) - 1, width, 2)
    y = _scale(low, high, height, 3)
    segments, current = [], []
    for index, value in enumerate(values):
        if value is None or not math.isfinite(value):
            if current:
                segments.append(current)
            current = []
            continue
        current.append(f"{x(index):.1f},{height - y(value):.1f}")
    if current:
        segments.append(current)
    lines = "".join(
        f'<polyline points="{" ".join(points)}" fill="none" stroke="#1d4f91" stroke-width="1.5"/>'
        for points in segments
    )
    last_index = max(i for i, v in enumerate(values) if v is not None and math.isfinite(v))
    last = values[last_index]
    dot = f'<circle cx="{x(last_index):.1f}" cy="{height - y(last):.1f}" r="2.2" fill="#1d4f91"/>'
    title = f"{label}: last {last:.4g}, range {low:.4g} to {high:.4g} over {len(values)} runs"
    return (
        f'<svg class="spark" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>{lines}{dot}</svg>'
    )


def timeline(
    points: Sequence[tuple[str, float | None, str]],
    *,
    threshold: float | None = None,
    band: Sequence[tuple[float, float] | None] | None = None,
    width: int = 640,
    height: int = 120,
    label: str = "",
) -> str:
    """Values over runs (label, value, level): a line with each point coloured by its level, an
    optional threshold line and an optional band (an estimate's interval) behind the line."""
    values = [value for _, value, _ in points]
    lows_highs = [edge for pair in (band or []) if pair for edge in pair]
    found = _finite([*values, *lows_highs, *([threshold] if threshold is not None else [])])
    if not found:
        return f'<p class="quiet">{escape(label)}: no figure yet.</p>'
    low, high = min(found), max(found)
    left, bottom = 44, 18
    x = _scale(0, max(len(points) - 1, 1), width - left, 6)
    y = _scale(low, high, height - bottom, 6)
    parts = []
    if band:
        upper = [f"{left + x(i):.1f},{height - bottom - y(pair[1]):.1f}" for i, pair in enumerate(band) if pair]
        lower = [f"{left + x(i):.1f},{height - bottom - y(pair[0]):.1f}" for i, pair in enumerate(band) if pair]
        if upper:
            parts.append(f'<polygon points="{" ".join(upper + lower[::-1])}" fill="#dfe8f5" stroke="none"/>')
    if threshold is not None:
        ty = height - bottom - y(threshold)
        parts.append(
            f'<line x1="{left}" x2="{width}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#b3261e" stroke-dasharray="4 3"/>'
            f'<text x="{width - 2}" y="{ty - 3:.1f}" text-anchor="end" font-size="10" fill="#8c1d18">threshold {threshold:.4g}</text>'
        )
    line = [
        f"{left + x(i):.1f},{height - bottom - y(v):.1f}"
        for i, (_, v, _) in enumerate(points)
        if v is not None and math.isfinite(v)
    ]
    if len(line) > 1:
        parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="#1d4f91" stroke-width="1.5"/>')
    for i, (name, value, level) in enumerate(points):
        if value is None or not math.isfinite(value):
            continue
        colour = LEVEL_COLOURS.get(level, LEVEL_COLOURS[""])
        parts.append(
            f'<circle cx="{left + x(i):.1f}" cy="{height - bottom - y(value):.1f}" r="3" fill="{colour}">'
            f"<title>{escape(name)}: {value:.4g} ({escape(level or 'no level')})</title></circle>"
        )
    axis = (
        f'<text x="{left - 4}" y="{height - bottom - y(high) + 4:.1f}" text-anchor="end" font-size="10">{high:.3g}</text>'
        f'<text x="{left - 4}" y="{height - bottom - y(low) + 4:.1f}" text-anchor="end" font-size="10">{low:.3g}</text>'
        f'<text x="{left}" y="{height - 3}" font-size="10">{escape(points[0][0])}</text>'
        f'<text x="{width}" y="{height - 3}" text-anchor="end" font-size="10">{escape(points[-1][0])}</text>'
    )
    title = f"{label}: {len(points)} runs, last {values[-1]:.4g}" if values and values[-1] is not None else label
    return (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="none"><title>{escape(title)}</title>{"".join(parts)}{axis}</svg>'
    )


def histogram_overlay(
    edges: Sequence[float],
    reference: Sequence[float],
    current: Sequence[float],
    *,
    width: int = 320,
    height: int = 120,
    label: str = "",
) -> str:
    """Two distributions on the same bins, as shares: reference as grey bars, current as a blue
    outline on top, so a shift shows at a glance."""
    bins = len(reference)
    if bins == 0 or len(current) != bins:
        return f'<p class="quiet">{escape(label)}: no distribution.</p>'
    top = max([*reference, *current, 1e-12])
    bottom = 16
    bar = (width - 8) / bins
    parts = []
    for i, share in enumerate(reference):
        h = (height - bottom - 4) * share / top
        parts.append(
            f'<rect x="{4 + i * bar:.1f}" y="{height - bottom - h:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="#c9ced6"/>'
        )
    outline = []
    for i, share in enumerate(current):
        h = (height - bottom - 4) * share / top
        outline += [
            f"{4 + i * bar:.1f},{height - bottom - h:.1f}",
            f"{4 + (i + 1) * bar:.1f},{height - bottom - h:.1f}",
        ]
    parts.append(f'<polyline points="{" ".join(outline)}" fill="none" stroke="#1d4f91" stroke-width="2"/>')
    if edges:
        parts.append(
            f'<text x="4" y="{height - 3}" font-size="10">{edges[0]:.4g}</text>'
            f'<text x="{width - 4}" y="{height - 3}" text-anchor="end" font-size="10">{edges[-1]:.4g}</text>'
        )
    title = f"{label}: reference (grey bars) and current (blue line), shares per bin"
    return (
        f'<svg class="histogram" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}">'
        f"<title>{escape(title)}</title>{''.join(parts)}</svg>"
    )
