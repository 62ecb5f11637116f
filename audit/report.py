"""report.html of an evidence bundle: what happened, for people, without the app. Not part of the proof.

Every event is told in the sentence its type gives the log's pages (`events.sentence`), with the
other events of the bundle as context. The report lays them out twice: as threads (what caused
what: a run, the alerts it raised, the request citing them, its approvals, its execution and the
change it made) and as a timeline in log order, which every thread links into. It is one
self-contained file: no script, no stylesheet, font or image fetched from anywhere, printable,
and every text that comes from the log is escaped.
"""

from __future__ import annotations

import html
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from audit import events

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;padding:0 1rem;color:#1b1b1b;background:#fff;max-width:80rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}h3{font-size:1rem;margin:1.5rem 0 .2rem}
a{color:#0b4f9c}a:focus{outline:2px solid #0b4f9c;outline-offset:1px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ccc;padding:.35rem .5rem;
text-align:left;vertical-align:top}thead th{background:#eee}code{font-size:12px;word-break:break-all}
small,.meta,.who{color:#4a4a4a}
.threads,.events{list-style:none;margin:0;padding:0}
.events{border-left:3px solid #bbb;padding-left:.6rem}.event{padding:.25rem .5rem;margin:.2rem 0}
.tag{font-size:11px;text-transform:uppercase;border:1px solid #4a4a4a;border-radius:3px;padding:0 .25rem}
.signature{background:#eef7ee}.alert{background:#fff4e5}.key{background:#eef2fb}.decision{background:#f6f0fb}
@media print{
@page{margin:15mm}body{margin:0;padding:0;max-width:none;font-size:10pt}nav{display:none}
a{color:inherit;text-decoration:none}thead{display:table-header-group}
tr,.event{break-inside:avoid}h2,h3{break-after:avoid}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""

DETAIL_LIMIT = 2000  # above this many events, routine ones are counted rather than listed
LIST_LIMIT = 10_000  # the most events a report lists: what it holds, whatever the export's size


class Timeline:
    """What the report shows, collected while the events stream past: every event of a small
    export; of a large one, its first LIST_LIMIT non-routine events, and a count of each type.
    The limit is what keeps an export's memory constant: a model's years of alerts would
    otherwise all be held until the report is written."""

    def __init__(self, total: int) -> None:
        self.list_all = total <= DETAIL_LIMIT
        self.events: list[dict] = []
        self.unlisted = 0  # non-routine events past LIST_LIMIT, counted only
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
        if not self.lists(event["type"]):
            return
        if len(self.events) < LIST_LIMIT:
            self.events.append(event)
        else:
            self.unlisted += 1


# ---- threads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thread:
    """Events that follow from one another, in log order. `origin[seq]` is what that event
    follows from within the thread, as (seq, how): "cause" (its causation or correlation) or
    "stream" (the event that opened its request, run or alert)."""

    events: list[dict]
    origin: dict[int, tuple[int, str]]


def event_threads(envelopes: Sequence[dict]) -> list[Thread]:
    """The threads of more than one event among `envelopes` (in log order), by their first event.

    Two events are in one thread when one caused the other (`causation_id`), when they share a
    cause or a correlation (even one not among `envelopes`: an alert and the request citing the
    same routine run outcome of a large export), or when they belong to one process stream. A
    process stream is identified by a generated UUID (a remediation request, a run, an alert):
    its events are one story. A stream named after a thing (a model, its policy, a person) is
    not, or every change of a model would be one thread. Only `envelopes` are held."""
    origin: dict[str, str] = {}

    def find(key: str) -> str:
        origin.setdefault(key, key)
        while origin[key] != key:
            origin[key] = origin[origin[key]]
            key = origin[key]
        return key

    for envelope in envelopes:
        for link in _links(envelope):
            first, second = find(envelope["event_id"]), find(link)
            if first != second:
                origin[first] = second
    groups: dict[str, list[dict]] = defaultdict(list)
    for envelope in envelopes:
        groups[find(envelope["event_id"])].append(envelope)
    return [_thread(group) for group in groups.values() if len(group) > 1]


def _links(envelope: dict) -> Iterator[str]:
    for name in ("causation_id", "correlation_id"):
        if envelope.get(name):
            yield envelope[name]
    if _is_process(envelope["stream"]["id"]):
        yield f"stream {envelope['stream']['type']} {envelope['stream']['id']}"  # never an event id


def _is_process(stream_id: str) -> bool:
    try:
        return str(uuid.UUID(stream_id)) == stream_id.lower()
    except ValueError:
        return False


def _thread(group: list[dict]) -> Thread:
    by_id = {envelope["event_id"]: envelope for envelope in group}
    opened: dict[tuple[str, str], dict] = {}  # the first event of each stream in the thread
    origin: dict[int, tuple[int, str]] = {}
    for envelope in group:
        stream = (envelope["stream"]["type"], envelope["stream"]["id"])
        cause = by_id.get(envelope.get("causation_id") or "") or by_id.get(envelope.get("correlation_id") or "")
        if cause is not None and cause["seq"] < envelope["seq"]:
            origin[envelope["seq"]] = (cause["seq"], "cause")
        elif _is_process(stream[1]) and stream in opened:
            origin[envelope["seq"]] = (opened[stream]["seq"], "stream")
        opened.setdefault(stream, envelope)
    return Thread(group, origin)


# ---- rendering -------------------------------------------------------------------------------


def render_report(timeline: Timeline, checkpoint: dict, query: dict, missing_data: list[str]) -> str:
    told = _sentences(timeline.events)
    threads = event_threads(timeline.events)
    rows = "".join(_row(event, told) for event in timeline.events)
    total = sum(timeline.counts.values())
    counted = _unlisted(timeline, total)
    counts = "".join(
        f'<tr><th scope="row">{_text(kind)}</th><td>{count}</td></tr>'
        for kind, count in sorted(timeline.counts.items())
    )
    scope = ", ".join(_term(k, v) for k, v in query.items() if v not in (None, [], False)) or "the whole log"
    missing = (
        f"<p><strong>Not included:</strong> {len(missing_data)} referenced data file(s) were not found in "
        f"storage: <code>{_text(', '.join(missing_data))}</code></p>"
        if missing_data
        else ""
    )
    log_id = _text(checkpoint["log_id"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Driftledger evidence: {_text(scope)}</title>
<style>{_STYLE}</style></head><body>
<header><h1>Driftledger evidence bundle</h1>
<p>Log <code>{log_id}</code> · scope: {_text(scope)} ·
{total} events, seq {timeline.first_seq}…{timeline.last_seq}.</p>{missing}
<nav aria-label="Contents"><a href="#checkpoint">Checkpoint</a> · <a href="#counts">Events by type</a> ·
<a href="#threads">Threads</a> · <a href="#timeline">Timeline</a> · <a href="#verify">How to verify</a></nav></header>
<main>
<h2 id="checkpoint">Checkpoint</h2>
<table><tbody><tr><th scope="row">tree size</th><td>{_text(checkpoint["tree_size"])}</td></tr>
<tr><th scope="row">root hash</th><td><code>{_text(checkpoint["root_hash"])}</code></td></tr>
<tr><th scope="row">signed at</th><td>{_text(checkpoint["timestamp"])}</td></tr>
<tr><th scope="row">signing key</th><td><code>{_text(checkpoint["key_id"])}</code></td></tr></tbody></table>
<h2 id="counts">Events by type</h2>
<table><thead><tr><th scope="col">type</th><th scope="col">events</th></tr></thead><tbody>{counts}</tbody></table>
<h2 id="threads">Threads</h2>
{_threads(threads, told, timeline.list_all)}
<h2 id="timeline">Timeline</h2>{counted}
<table><thead><tr><th scope="col">seq</th><th scope="col">time (UTC)</th><th scope="col">what happened</th>
<th scope="col">who</th></tr></thead><tbody>{rows}</tbody></table>
<h2 id="verify">How to verify this bundle</h2>
<ol><li>Install the verifier on a machine of your own: <code>pip install cryptography rfc8785</code> and
the <code>audit</code> package of Driftledger (or <code>pip install driftledger --no-deps</code>).</li>
<li>Obtain the log's public key from its operator through a channel you trust, as a PEM file.</li>
<li>Run <code>python -m audit.verifier THIS_BUNDLE.zip --trusted-key KEY.pem --log-id {log_id}</code>.
It checks the manifest signature and file hashes, every
event's hash, signature and chain link, every inclusion proof against the signed checkpoint,
the consistency of earlier checkpoints and the data files, and exits 0 only if all hold.</li></ol>
<p>This report is a reading aid; the proof is in the other files.</p>
</main></body></html>
"""


def _unlisted(timeline: Timeline, total: int) -> str:
    """What the timeline does not list, and where it is."""
    said = []
    if routine := total - len(timeline.events) - timeline.unlisted:
        said.append(f"{routine} routine events are counted rather than listed, here and in the threads")
    if timeline.unlisted:
        last = timeline.events[-1]["seq"]
        said.append(
            f"the report lists the first {len(timeline.events)} of {len(timeline.events) + timeline.unlisted} "
            f"non-routine events (to seq {last}); "
            f"the {timeline.unlisted} after them are counted by type above, not listed"
        )
    text = "; ".join(said)
    return f"<p>{text[0].upper()}{text[1:]}; every event is in events.jsonl.</p>" if said else ""


def _term(name: str, value: object) -> str:
    """One term of the export's query as a reader would write it: include_data=yes, streams=a:1, b:2."""
    shown = "yes" if value is True else ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return f"{name}={shown}"


def _text(value: object) -> str:
    return html.escape(str(value))


def _sentences(envelopes: Sequence[dict]) -> dict[int, str]:
    """seq -> the event's sentence, told with the other listed events of its streams as context
    (an approval names what the request it signs asked for). A stream is parsed only when a
    sentence asks for it: holding every parsed payload of a large export made each new one
    slower to allocate (25 against 13 µs a payload at 100,000 held)."""
    by_stream: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for envelope in envelopes:
        by_stream[(envelope["stream"]["type"], envelope["stream"]["id"])].append(envelope)
    asked: dict[tuple[str, str], list[events.Event]] = {}
    typed: dict[int, events.Event] = {}  # the events of the streams asked for, by seq

    def stream(kind: str, ident: str) -> list[events.Event]:
        if (kind, ident) not in asked:
            for envelope in by_stream.get((kind, ident), ()):
                if (event := _typed(envelope)) is not None:
                    typed[envelope["seq"]] = event
            asked[(kind, ident)] = [typed[e["seq"]] for e in by_stream.get((kind, ident), ()) if e["seq"] in typed]
        return asked[(kind, ident)]

    return {
        envelope["seq"]: events.sentence(envelope, stream, parsed=typed.get(envelope["seq"])) for envelope in envelopes
    }


def _typed(envelope: dict) -> events.Event | None:
    try:
        return events.parse(envelope["type"], envelope["schema"], envelope["payload"])
    except (events.UnknownEventType, events.InvalidPayload):
        return None


def _threads(threads: list[Thread], told: dict[int, str], list_all: bool) -> str:
    if not threads:
        return "<p>No two events of this report follow from one another.</p>"
    intro = (
        "<p>Events that follow from one another, each thread in log order: what an event was caused "
        "by, or the request, run or alert it continues, is named with it. Each seq links to the "
        "event's row in the timeline.</p>"
    )
    if not list_all:
        intro += "<p>Threads are made of the listed events; events not listed are only counted.</p>"
    items = "".join(f"<li>{_thread_html(index, thread, told)}</li>" for index, thread in enumerate(threads, 1))
    return f'{intro}<ol class="threads">{items}</ol>'


def _thread_html(index: int, thread: Thread, told: dict[int, str]) -> str:
    first, last = thread.events[0]["seq"], thread.events[-1]["seq"]
    ids = {envelope["event_id"] for envelope in thread.events}
    items = "".join(_item(envelope, told, thread.origin, ids) for envelope in thread.events)
    return (
        f'<section class="thread" aria-labelledby="thread-{index}">'
        f'<h3 id="thread-{index}">{_text(told[first])}</h3>'
        f'<p class="meta">{len(thread.events)} events, seq {first}…{last}</p><ol class="events">{items}</ol></section>'
    )


def _item(envelope: dict, told: dict[int, str], origin: dict[int, tuple[int, str]], in_thread: set[str]) -> str:
    seq, kind, actor = int(envelope["seq"]), envelope["type"], envelope["actor"]
    tone = events.tone(kind)
    tag = f' <span class="tag">{_text(tone)}</span>' if tone else ""
    notes = []
    if seq in origin:
        source, how = origin[seq]
        notes.append(
            f'{"follows from" if how == "cause" else "continues"} <a href="#thread-seq-{source}">seq {source}</a>'
        )
    cause = envelope.get("causation_id")
    if cause and cause not in in_thread:
        notes.append(f"follows from event {_text(cause[:8])}, not listed here")
    after = "".join(f" · <small>{note}</small>" for note in notes)
    return (
        f'<li id="thread-seq-{seq}" class="event {_text(tone)}"><a href="#seq-{seq}">seq {seq}</a> · '
        f'<time datetime="{_text(envelope["occurred_at"])}">{_text(envelope["occurred_at"])}</time>{tag}{after}<br>'
        f'{_text(told[seq])}<br><span class="who">{_text(actor["name"])} ({_text(actor["kind"])})</span></li>'
    )


def _row(event: dict, told: dict[int, str]) -> str:
    seq, kind, actor = int(event["seq"]), event["type"], event["actor"]
    return (
        f'<tr id="seq-{seq}" class="{_text(events.tone(kind))}"><th scope="row">{seq}</th>'
        f"<td>{_text(event['occurred_at'])}</td>"
        f"<td>{_text(told[seq])}<br><small>{_text(kind)}</small></td>"
        f"<td>{_text(actor['name'])} ({_text(actor['kind'])})</td></tr>"
    )
