"""report.html of an evidence bundle, exported from real signed events on the real database: the
log's sentences laid out as threads (run -> alert -> request -> approval -> execution) and as a
timeline they link into; self-contained, printable, accessible, and every text escaped."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import uuid
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from audit import events, report
from audit.evidence import EvidenceQuery, evidence_export
from audit.models import Event
from audit.store import Actor, NewEvent, append
from monitoring.models import Deployment
from monitoring.registry import services as registry
from monitoring.remediation.services import remediation_decide, remediation_load, remediation_request, remediation_run
from monitoring.runs.services import run_execute
from tests.audit.factories import Noted
from tests.monitoring.conftest import ALICE, PASSWORD, SCHEMA, approved, person
from tests.monitoring.runs.conftest import NOW, _ingest, _rows

AUDITOR = Actor("user", "ada", "Ada Auditor")
HOSTILE = "<script>alert(1)</script>"
pytestmark = pytest.mark.django_db


class Page(HTMLParser):
    """What a reader (and a browser) finds in the report: tags, links, ids, headings, the style,
    the text, and each thread with the seqs it links to."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.ids: set[str] = set()
        self.headings: list[tuple[int, str]] = []
        self.threads: list[dict] = []
        self.style = self.text = ""
        self._open: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        if found.get("id"):
            self.ids.add(found["id"] or "")
        if tag == "section" and "thread" in (found.get("class") or "").split():
            self.threads.append({"heading": "", "seqs": [], "text": ""})
        if self._in("section") and (found.get("href") or "").startswith("#seq-"):
            self.threads[-1]["seqs"].append(int((found.get("href") or "").removeprefix("#seq-")))
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append((int(tag[1]), ""))
        self._open.append(tag)

    def handle_endtag(self, tag) -> None:
        while self._open and self._open.pop() != tag:
            pass

    def handle_data(self, data) -> None:
        self.text += data
        if self._in("style"):
            self.style += data
        if self._in("section"):
            self.threads[-1]["text"] += data
            if self._in("h3"):
                self.threads[-1]["heading"] += data
        if self._open and re.fullmatch(r"h[1-6]", self._open[-1]):
            level, heading = self.headings[-1]
            self.headings[-1] = (level, heading + data)

    def _in(self, tag: str) -> bool:
        return tag in self._open

    def thread_with(self, seq: int) -> dict:
        return next(thread for thread in self.threads if seq in thread["seqs"])


def _export(tmp_path: Path, **query) -> tuple[Page, str, dict[int, dict]]:
    """The bundle's report parsed, as text, and its events by seq."""
    out = tmp_path / f"bundle-{uuid.uuid4().hex[:6]}.zip"
    evidence_export(query=EvidenceQuery(**query), out=out, created_by=AUDITOR)
    with zipfile.ZipFile(out) as bundle:
        text = bundle.read("report.html").decode()
        lines = bundle.read("events.jsonl").splitlines()
    envelopes = [json.loads(line)["event"] for line in lines]
    return Page(text), text, {envelope["seq"]: envelope for envelope in envelopes}


@pytest.fixture
def rollback(db) -> dict:
    """The demo's story on a small model: 1.1 promoted with approval, a run on drifted data raises
    alerts, an engineer requests the rollback to 1.0 citing the critical alert, a risk approver
    signs it, the executor carries it out. Everything through the product's services."""
    registry.model_register(name="credit", task="binary_classification", owner="alice", data_schema=SCHEMA, actor=ALICE)
    for version in ("1.0", "1.1"):
        registry.version_register(name="credit", version=version, artifact_uri=f"s3://m/{version}", actor=ALICE)
    registry.deployment_change(name="credit", action="promote", version="1.0", actor=ALICE, reason="first release")
    promotion = approved("credit", "promote_challenger", {"version": "1.1"}, reason="release")
    _ingest("reference", _rows(4000, start=NOW, seed=1, reference=True))
    start = NOW - dt.timedelta(hours=3)
    _ingest("predictions", _rows(3000, start=start, shift=0.8, new_region=0.2, seed=2))
    run = run_execute(model="credit", start=start, end=start + dt.timedelta(hours=2))
    alert = Event.objects.filter(event_type="monitoring.AlertRaised", payload__severity="critical").first()
    assert alert is not None
    requester = person("engineer", "ml_engineer")
    request_id = remediation_request(
        model="credit",
        kind="rollback",
        parameters={"to_version": "1.0"},
        evidence=[str(alert.event_id)],
        actor=Actor("user", requester.username, requester.get_full_name()),
        reason="Income drifted: back to 1.0 while we retrain",
    )
    signer = person("signer", "risk_approver")
    remediation_decide(request_id=request_id, decision="approve", user=signer, password=PASSWORD, reason="agreed")
    remediation_run(request_id)
    assert remediation_load(request_id).state.value == "succeeded"
    assert Deployment.objects.get(model_id="credit").champion == "1.0"
    seqs = dict(Event.objects.filter(stream_type="remediation", stream_id=request_id).values_list("event_type", "seq"))
    return {"run": run.run_id, "alert": alert.seq, "request": request_id, "promotion": promotion, **seqs}


def test_a_rollback_is_one_thread_from_the_run_to_the_change_in_log_order(rollback, tmp_path):
    page, _, bundle = _export(tmp_path, scopes=(("model", "credit"),))
    requested = rollback["monitoring.RemediationRequested"]
    thread = page.thread_with(requested)
    kinds = [bundle[seq]["type"] for seq in thread["seqs"]]
    assert thread["seqs"] == sorted(thread["seqs"])  # log order
    assert kinds[:2] == ["monitoring.RunStarted", "monitoring.RunCompleted"]
    assert rollback["alert"] in thread["seqs"]
    assert [kind for kind in kinds if kind.startswith("monitoring.Remediation")] == [
        "monitoring.RemediationRequested",
        "monitoring.RemediationApproved",
        "monitoring.RemediationExecutionStarted",
        "monitoring.RemediationSucceeded",
    ]
    assert "monitoring.DeploymentChanged" in kinds  # the change the execution caused
    assert thread["heading"].startswith(f"Driftledger monitoring worker started run {rollback['run'][:8]} of credit")
    told = [
        "A critical alert was raised on credit",
        "Engineer requested the rollback of credit to 1.0: Income drifted: back to 1.0 while we retrain",
        "Signer (risk approver) approved the rollback of credit to 1.0, signed ",
        "started carrying out the rollback of credit to 1.0",
        "rolled credit back to 1.0",
        "carried out the rollback of credit to 1.0",
    ]
    places = [thread["text"].index(sentence) for sentence in told]
    assert places == sorted(places)
    promotion = page.thread_with(next(s for s, e in bundle.items() if e["stream"]["id"] == rollback["promotion"]))
    assert promotion is not thread and not set(promotion["seqs"]) & set(thread["seqs"])
    assert all(len(thread["seqs"]) > 1 for thread in page.threads)  # singletons stay in the timeline
    assert {f"seq-{seq}" for seq in bundle} <= page.ids  # every event has its row


def test_the_report_references_nothing_outside_itself(rollback, tmp_path):
    page, _, _ = _export(tmp_path, scopes=(("model", "credit"),))
    fetching = {"script", "link", "img", "iframe", "object", "embed", "base", "form", "audio", "video", "source"}
    assert not {tag for tag, _ in page.tags} & fetching
    for tag, attrs in page.tags:
        assert not {"src", "srcset", "action", "data", "poster", "background", "style"} & set(attrs), tag
        if "href" in attrs:
            assert (attrs["href"] or "").startswith("#"), attrs
            assert (attrs["href"] or "")[1:] in page.ids  # and it leads somewhere
        if tag == "meta":
            assert set(attrs) <= {"charset", "name", "content"}
    style = page.style.lower()
    assert "url(" not in style and "@import" not in style and "@font-face" not in style


def test_the_report_is_accessible_and_printable(rollback, tmp_path):
    page, text, _ = _export(tmp_path, scopes=(("model", "credit"),))
    assert ("html", {"lang": "en"}) in page.tags
    levels = [level for level, _ in page.headings]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(after <= before + 1 for before, after in itertools.pairwise(levels))
    assert [heading for level, heading in page.headings if level == 2] == [
        "Checkpoint",
        "Events by type",
        "Threads",
        "Timeline",
        "How to verify this bundle",
    ]
    assert all(attrs.get("scope") in ("col", "row") for tag, attrs in page.tags if tag == "th")
    assert "@media print" in page.style
    foregrounds = re.findall(r"(?<![-\w])color:(#[0-9a-f]{3,6})", page.style)
    backgrounds = ["#fff", *re.findall(r"background:(#[0-9a-f]{3,6})", page.style)]
    assert foregrounds and len(backgrounds) > 4
    for foreground in foregrounds:
        for background in backgrounds:
            assert _contrast(foreground, background) >= 4.5, (foreground, background)  # WCAG AA
    assert text.startswith("<!doctype html>")


def test_hostile_text_is_shown_as_text(tmp_path):
    mallory = Actor("user", "mallory", '<img src=x onerror="alert(2)">')
    stream = str(uuid.uuid4())
    append(
        [
            NewEvent("note", stream, Noted(model="credit", summary="x"), mallory, reason=HOSTILE),
            NewEvent("note", stream, Noted(model="credit", summary="y"), mallory, reason="</h3><h1>"),
        ],
        expected={("note", stream): 0},
    )
    page, text, _ = _export(tmp_path)
    assert not {tag for tag, _ in page.tags} & {"script", "img"}
    assert [level for level, _ in page.headings].count(1) == 1
    (thread,) = page.threads
    assert thread["heading"] == f'<img src=x onerror="alert(2)"> recorded test.Noted: {HOSTILE}'
    assert HOSTILE in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script" not in text


def test_an_export_over_the_detail_limit_threads_its_listed_events(rollback, tmp_path, monkeypatch):
    monkeypatch.setattr(report, "DETAIL_LIMIT", 10)
    page, text, bundle = _export(tmp_path, scopes=(("model", "credit"),))
    assert len(bundle) > 10 and "routine events are counted rather than listed" in text
    routine = {seq for seq, e in bundle.items() if e["type"] in ("monitoring.RunStarted", "monitoring.RunCompleted")}
    listed = {int(i.removeprefix("seq-")) for i in page.ids if i.startswith("seq-")}
    assert len(routine) == 2 and not routine & listed and listed == set(bundle) - routine
    thread = page.thread_with(rollback["monitoring.RemediationRequested"])
    assert set(thread["seqs"]) <= listed  # made of the listed events only
    assert rollback["alert"] in thread["seqs"]  # joined through the run outcome they both follow from
    kinds = [bundle[seq]["type"] for seq in thread["seqs"]]
    assert kinds.index("monitoring.AlertRaised") < kinds.index("monitoring.RemediationRequested")
    assert kinds.index("monitoring.RemediationApproved") < kinds.index("monitoring.RemediationSucceeded")
    assert "not listed here" in thread["text"]
    for _, attrs in page.tags:
        assert (attrs.get("href") or "#")[1:] in page.ids | {""}


def test_each_sentence_is_told_with_its_streams_as_if_every_event_were_parsed_first(rollback, tmp_path):
    """The report parses a stream only when a sentence asks for it; each sentence is the one told
    with every listed event parsed up front, as the log's pages tell it."""
    _, _, bundle = _export(tmp_path, scopes=(("model", "credit"),))
    envelopes = [bundle[seq] for seq in sorted(bundle)]
    everything: dict[tuple[str, str], list] = {}
    for envelope in envelopes:
        typed = events.parse(envelope["type"], envelope["schema"], envelope["payload"])
        everything.setdefault((envelope["stream"]["type"], envelope["stream"]["id"]), []).append(typed)
    expected = {
        envelope["seq"]: events.sentence(envelope, lambda kind, ident: everything.get((kind, ident), []))
        for envelope in envelopes
    }
    told = report._sentences(envelopes)
    assert told == expected
    approval = rollback["monitoring.RemediationApproved"]
    assert "approved the rollback of credit to 1.0" in told[approval]  # told from the request's stream
    broken = {**bundle[approval], "seq": max(bundle) + 1, "payload": {"not": "an approval"}}
    again = report._sentences([*envelopes, broken])
    assert again[broken["seq"]].endswith("recorded monitoring.RemediationApproved (schema 1)")
    assert again[approval] == told[approval]


def _contrast(first: str, second: str) -> float:
    def luminance(colour: str) -> float:
        digits = colour[1:] if len(colour) == 7 else "".join(c * 2 for c in colour[1:])
        channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_a_report_lists_at_most_its_limit_and_counts_the_rest(tmp_path, monkeypatch):
    """However many non-routine events an export holds, the report holds LIST_LIMIT of them (the
    export's memory stays constant); the others are counted by type, and all are in events.jsonl."""
    monkeypatch.setattr(report, "DETAIL_LIMIT", 4)
    monkeypatch.setattr(report, "LIST_LIMIT", 6)
    stream = str(uuid.uuid4())
    append(
        [NewEvent("note", stream, Noted(model="credit", summary=f"n{i}"), AUDITOR) for i in range(15)],
        expected={("note", stream): 0},
    )
    page, text, bundle = _export(tmp_path, streams=(("note", stream),))
    assert len(bundle) == 15
    listed = sorted(int(i.removeprefix("seq-")) for i in page.ids if i.startswith("seq-"))
    assert listed == sorted(bundle)[:6]
    assert f"The report lists the first 6 of 15 non-routine events (to seq {listed[-1]}); the 9 after them" in text
    assert "routine events are counted" not in text  # none of these are routine
    assert re.search(r"<th scope=\"row\">test\.Noted</th><td>15</td>", text)
    (thread,) = page.threads  # one process stream, made of the listed events only
    assert thread["seqs"] == listed and "Threads are made of the listed events" in text
