"""report.html of an evidence bundle: a timeline people can read. Not part of the proof."""

from __future__ import annotations

import html
from collections import defaultdict

from audit import events

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1b1b;max-width:80rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.35rem .5rem;
text-align:left;vertical-align:top}th{background:#f4f4f4}code{font-size:12px;word-break:break-all}
.signature{background:#eef7ee}.alert{background:#fff4e5}.key{background:#eef2fb}.decision{background:#f6f0fb}
"""

DETAIL_LIMIT = 2000  # above this many events, routine ones are counted rather than listed


class Timeline:
    """What the report shows, collected while the events stream past: every event of a small
    export; of a large one, every non-routine event and a count of each type."""

    def __init__(self, total: int) -> None:
        self.list_all = total <= DETAIL_LIMIT
        self.events: list[dict] = []
        self.counts: dict[str, int] = {}
        self.first_seq = self.last_seq = 0

    def lists(self, kind: str) -> bool:
        """Whether events of this type appear in the timeline (else they are only counted)."""
        return self.list_all or not events.is_routine(kind)

    def count(self, kind: str, seq: int) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.first_seq = self.first_seq or seq
        self.last_seq = seq

    def add(self, event: dict) -> None:
        self.count(event["type"], event["seq"])
        if self.lists(event["type"]):
            self.events.append(event)


def render_report(timeline: Timeline, checkpoint: dict, query: dict, missing_data: list[str]) -> str:
    by_stream: dict[tuple[str, str], list[events.Event]] = defaultdict(list)
    for envelope in timeline.events:
        try:
            typed = events.parse(envelope["type"], envelope["schema"], envelope["payload"])
        except (events.UnknownEventType, events.InvalidPayload):
            continue
        by_stream[(envelope["stream"]["type"], envelope["stream"]["id"])].append(typed)

    def stream(kind: str, ident: str) -> list[events.Event]:
        return by_stream.get((kind, ident), [])

    rows = "".join(_row(event, stream) for event in timeline.events)
    total = sum(timeline.counts.values())
    counted = (
        ""
        if timeline.list_all
        else (
            f"<p>{total - len(timeline.events)} routine events are counted below rather than "
            "listed; every event is in events.jsonl.</p>"
        )
    )
    counts = "".join(
        f"<tr><td>{html.escape(kind)}</td><td>{count}</td></tr>" for kind, count in sorted(timeline.counts.items())
    )
    scope = ", ".join(f"{k}={v}" for k, v in query.items() if v not in (None, [], False)) or "the whole log"
    missing = (
        f"<p><strong>Not included:</strong> {len(missing_data)} referenced data file(s) were not found in "
        f"storage: <code>{html.escape(', '.join(missing_data))}</code></p>"
        if missing_data
        else ""
    )
    first, last = timeline.first_seq, timeline.last_seq
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Driftledger evidence: {html.escape(scope)}</title>
<style>{_STYLE}</style></head><body>
<h1>Driftledger evidence bundle</h1>
<p>Log <code>{html.escape(checkpoint["log_id"])}</code> · scope: {html.escape(scope)} ·
{total} events, seq {first}…{last}.</p>{missing}
<h2>Checkpoint</h2>
<table><tr><th>tree size</th><td>{checkpoint["tree_size"]}</td></tr>
<tr><th>root hash</th><td><code>{checkpoint["root_hash"]}</code></td></tr>
<tr><th>signed at</th><td>{html.escape(checkpoint["timestamp"])}</td></tr>
<tr><th>signing key</th><td><code>{html.escape(checkpoint["key_id"])}</code></td></tr></table>
<h2>Events by type</h2>
<table><tr><th>type</th><th>events</th></tr>{counts}</table>
<h2>Timeline</h2>{counted}
<table><tr><th>seq</th><th>time (UTC)</th><th>what happened</th><th>who</th></tr>{rows}</table>
<h2>How to verify this bundle</h2>
<ol><li>Install the verifier on a machine of your own: <code>pip install cryptography rfc8785</code> and
the <code>audit</code> package of Driftledger (or <code>pip install driftledger --no-deps</code>).</li>
<li>Obtain the log's public key from its operator through a channel you trust, as a PEM file.</li>
<li>Run <code>python -m audit.verifier THIS_BUNDLE.zip --trusted-key KEY.pem --log-id {
        html.escape(checkpoint["log_id"])
    }</code>. It checks the manifest signature and file hashes, every
event's hash, signature and chain link, every inclusion proof against the signed checkpoint,
the consistency of earlier checkpoints and the data files, and exits 0 only if all hold.</li></ol>
<p>This report is a reading aid; the proof is in the other files.</p>
</body></html>
"""


def _row(event: dict, stream) -> str:
    kind = event["type"]
    actor = event["actor"]
    return (
        f'<tr class="{events.tone(kind)}"><td>{event["seq"]}</td><td>{html.escape(event["occurred_at"])}</td>'
        f"<td>{html.escape(events.sentence(event, stream))}<br><small>{html.escape(kind)}</small></td>"
        f"<td>{html.escape(actor['name'])} ({html.escape(actor['kind'])})</td></tr>"
    )
