"""The server-drawn charts: positions follow the numbers, gaps stay gaps, every text is escaped
(labels come from model, feature and segment names, which reporters choose)."""

from __future__ import annotations

import re

from web.charts import histogram_overlay, sparkline, timeline


def _points(svg: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"([\d.]+),([\d.]+)", re.search(r'points="([^"]+)"', svg)[1])]


def test_a_sparkline_rises_where_the_values_rise_and_breaks_at_a_gap():
    svg = sparkline([0.1, 0.2, None, 0.4, 0.5], label="auc")
    lines = re.findall(r"<polyline", svg)
    assert len(lines) == 2  # the gap splits the line
    first = _points(svg)
    assert first[1][1] < first[0][1]  # higher value, higher on the page (smaller y)
    assert "last 0.5" in svg


def test_every_text_is_escaped():
    hostile = '<script>alert(1)</script>"'
    for svg in (
        sparkline([1, 2], label=hostile),
        timeline([(hostile, 1.0, "ok"), ("b", 2.0, "critical")], label=hostile),
        histogram_overlay([0, 1, 2], [0.5, 0.5], [0.2, 0.8], label=hostile),
    ):
        assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_points_are_coloured_by_their_level_and_say_it_in_words():
    svg = timeline([("d1", 0.1, "ok"), ("d2", 0.3, "critical")], threshold=0.2, label="psi")
    assert "<title>d2: 0.3 (critical)</title>" in svg and 'fill="#b3261e"' in svg
    assert "threshold 0.2" in svg


def test_the_histogram_draws_both_distributions_on_the_same_bins():
    svg = histogram_overlay([0.0, 1.0, 2.0], [0.75, 0.25], [0.25, 0.75], width=208, height=116)
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', svg)]
    assert heights[0] == 3 * heights[1]  # reference shares 0.75 and 0.25
    outline = _points(svg)
    assert outline[0][1] > outline[2][1]  # the current window's second bin stands higher
