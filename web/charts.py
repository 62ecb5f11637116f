"""Charts drawn on the server as SVG: nothing to load or run in the browser, they print, and the
Content-Security-Policy stays strict. Pure functions from numbers to markup, every text escaped.
A level is told by a colour and by words in the chart's title (read by screen readers)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from django.utils.safestring import SafeString, mark_safe

LEVEL_COLOURS = {"ok": "#2e7d32", "warning": "#b26a00", "critical": "#b3261e"}
NO_LEVEL = "#6b7178"
INK = "#1d4f91"


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _scale(low: float, high: float, size: float, pad: float) -> Callable[[float], float]:
    span = (high - low) or 1.0
    return lambda value: pad + (value - low) / span * (size - 2 * pad)


def _svg(kind: str, title: str, width: int, height: int, body: str) -> str:
    return (
        f'<svg class="{kind}" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}"><title>{escape(title)}</title>{body}</svg>'
    )


def sparkline(values: Sequence[float | None], *, width: int = 120, height: int = 28, label: str = "") -> str:
    """The latest values as a small line (None is a gap), the last point marked."""
    found = _finite(values)
    if len(found) < 2:
        return _svg("spark", f"{label}: not enough runs yet", width, height, "")
    x = _scale(0, len(values) - 1, width, 3)
    y = _scale(min(found), max(found), height, 3)
    lines: list[str] = []
    points: list[str] = []
    for index, value in enumerate([*values, None]):
        if value is None or not math.isfinite(value):
            if len(points) > 1:
                lines.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{INK}" stroke-width="1.5"/>')
            points = []
            continue
        points.append(f"{x(index):.1f},{height - y(value):.1f}")
    last = max(i for i, v in enumerate(values) if v is not None and math.isfinite(v))
    dot = f'<circle cx="{x(last):.1f}" cy="{height - y(values[last]):.1f}" r="2.2" fill="{INK}"/>'  # type: ignore[arg-type]
    title = f"{label}: last {values[last]:.4g}, from {min(found):.4g} to {max(found):.4g} over {len(values)} runs"
    return _svg("spark", title, width, height, "".join(lines) + dot)


def timeline(
    points: Sequence[tuple[str, float | None, str]],
    *,
    threshold: float | None = None,
    band: Sequence[tuple[float, float] | None] | None = None,
    baseline: Sequence[float | None] | None = None,
    width: int = 640,
    height: int = 130,
    label: str = "",
) -> str:
    """Values over runs, each point (name, value, level) coloured by its level, with an optional
    threshold line, an optional band (an estimate's interval) behind the line, and an optional
    baseline each value was judged against (a KPI's seasonal baseline, the reference's figure),
    drawn grey and dashed."""
    edges = [edge for pair in (band or []) if pair for edge in pair]
    found = _finite(
        [value for _, value, _ in points]
        + edges
        + list(baseline or [])
        + ([threshold] if threshold is not None else [])
    )
    if not points or not found:
        return f'<p class="quiet">{escape(label)}: no figure yet.</p>'
    low, high = min(found), max(found)
    left, bottom = 46, 18
    x = _scale(0, max(len(points) - 1, 1), width - left, 6)
    y = _scale(low, high, height - bottom, 6)

    def at(index: int, value: float) -> str:
        return f"{left + x(index):.1f},{height - bottom - y(value):.1f}"

    parts = []
    if band:
        upper = [at(i, pair[1]) for i, pair in enumerate(band) if pair]
        lower = [at(i, pair[0]) for i, pair in enumerate(band) if pair]
        if upper:
            parts.append(f'<polygon points="{" ".join(upper + lower[::-1])}" fill="#dfe8f5"/>')
    if threshold is not None:
        mark = height - bottom - y(threshold)
        parts.append(
            f'<line x1="{left}" x2="{width}" y1="{mark:.1f}" y2="{mark:.1f}" stroke="#b3261e" stroke-dasharray="4 3"/>'
        )
    if baseline:
        judged_against = [at(i, v) for i, v in enumerate(baseline) if v is not None and math.isfinite(v)]
        if len(judged_against) > 1:
            parts.append(
                f'<polyline points="{" ".join(judged_against)}" fill="none" stroke="#6b7178" '
                'stroke-dasharray="2 3" stroke-width="1.5"/>'
            )
    line = [at(i, v) for i, (_, v, _) in enumerate(points) if v is not None and math.isfinite(v)]
    if len(line) > 1:
        parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="{INK}" stroke-width="1.5"/>')
    for i, (name, figure, judged) in enumerate(points):
        if figure is not None and math.isfinite(figure):
            colour = LEVEL_COLOURS.get(judged, NO_LEVEL)
            tip = f"{name}: {figure:.4g} ({judged or 'no level'})"
            parts.append(
                f'<circle cx="{left + x(i):.1f}" cy="{height - bottom - y(figure):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(tip)}</title></circle>"
            )

    def tick(value: float) -> str:
        return f'<text x="{left - 4}" y="{height - bottom - y(value) + 4:.1f}" text-anchor="end" font-size="10">'

    parts.append(
        f"{tick(high)}{high:.3g}</text>{tick(low)}{low:.3g}</text>"
        f'<text x="{left}" y="{height - 3}" font-size="10">{escape(points[0][0])}</text>'
        f'<text x="{width}" y="{height - 3}" text-anchor="end" font-size="10">{escape(points[-1][0])}</text>'
    )
    last = points[-1][1]
    title = f"{label}: {len(points)} runs" + (f", last {last:.4g}" if last is not None else "")
    if threshold is not None:
        title += f", threshold {threshold:.4g}"
    if baseline and baseline[-1] is not None:
        title += f", judged against {baseline[-1]:.4g} (dashed grey)"
    return _svg("chart", title, width, height, "".join(parts))


def histogram_overlay(
    edges: Sequence[float],
    reference: Sequence[float],
    current: Sequence[float],
    *,
    width: int = 320,
    height: int = 120,
    label: str = "",
) -> str:
    """Two distributions on the same bins, as shares: the reference as grey bars, the current
    window as a blue outline over them, so a shift shows at a glance."""
    if not reference or len(current) != len(reference):
        return f'<p class="quiet">{escape(label)}: no distribution.</p>'
    top, bottom = max([*reference, *current, 1e-12]), 16
    bar = (width - 8) / len(reference)

    def tall(share: float) -> float:
        return (height - bottom - 4) * share / top

    bars = "".join(
        f'<rect x="{4 + i * bar:.1f}" y="{height - bottom - tall(s):.1f}" width="{bar:.1f}" height="{tall(s):.1f}" '
        f'fill="#c9ced6"/>'
        for i, s in enumerate(reference)
    )
    outline = " ".join(
        f"{4 + (i + side) * bar:.1f},{height - bottom - tall(s):.1f}" for i, s in enumerate(current) for side in (0, 1)
    )
    scale = (
        f'<text x="4" y="{height - 3}" font-size="10">{edges[0]:.4g}</text>'
        f'<text x="{width - 4}" y="{height - 3}" text-anchor="end" font-size="10">{edges[-1]:.4g}</text>'
        if edges
        else ""
    )
    body = f'{bars}<polyline points="{outline}" fill="none" stroke="{INK}" stroke-width="2"/>{scale}'
    return _svg("histogram", f"{label}: reference as grey bars, current window as a blue line", width, height, body)


def safe(svg: str) -> SafeString:
    """Markup made here (every text in it escaped), for a template."""
    return mark_safe(svg)  # noqa: S308 - built by this module, texts escaped
