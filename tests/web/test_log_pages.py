"""The audit-log pages: who may read them, filters and cursor pages checked against the log
itself, and an event's page with its envelope, thread and proof (recomputed here)."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.test import Client

from audit.checkpoints import checkpoint_create
from audit.models import Event
from tests.monitoring.conftest import approved
from tests.web.conftest import signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def rollback(people, credit_model) -> str:
    approved(credit_model, "promote_challenger", {"version": "1.1"}, reason="validated on holdout")
    request_id = approved(credit_model, "rollback", {"to_version": "1.0"}, reason="drift on income <b>")
    checkpoint_create(publish=False)
    return request_id


def _seqs(page: str) -> list[int]:
    return [int(seq) for seq in re.findall(r'<td class="num"><a href="/log/(\d+)/">', page)]


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("auditor", 200),
        ("compliance_officer", 200),
        ("admin", 200),
        ("ml_engineer", 403),
        ("risk_approver", 403),
        ("nobody", 403),
    ],
)
def test_the_log_is_for_auditors_compliance_officers_and_admins(people, role, status):
    client = signed_in(people[role])
    assert client.get("/log/").status_code == status
    assert client.get("/log/1/").status_code in (status, 404)
    nav = client.get("/").content.decode()
    assert ('href="/log/"' in nav) is (status == 200)


def test_the_first_page_is_the_newest_events_in_order(people, rollback):
    page = signed_in(people["auditor"]).get("/log/").content.decode()
    newest = list(Event.objects.order_by("-seq").values_list("seq", flat=True)[:50])
    assert _seqs(page) == newest


def test_cursor_pages_cover_the_log_once(people, rollback):
    client = signed_in(people["auditor"])
    seen, url = [], "/log/?limit=7"
    while url:
        page = client.get(url).content.decode()
        seen += _seqs(page)
        found = re.search(r'<a href="([^"]+)" hx-get="[^"]+" hx-target="#log-results"', page)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert seen == list(Event.objects.order_by("-seq").values_list("seq", flat=True))


def test_filters_select_what_the_log_holds(people, rollback):
    client = signed_in(people["compliance_officer"])
    by_type = _seqs(client.get("/log/?type=monitoring.RemediationApproved").content.decode())
    assert by_type == list(
        Event.objects.filter(event_type="monitoring.RemediationApproved").order_by("-seq").values_list("seq", flat=True)
    )
    by_actor = _seqs(client.get("/log/?actor=approver0").content.decode())
    assert by_actor and set(by_actor) == set(Event.objects.filter(actor_id="approver0").values_list("seq", flat=True))
    stream = f"remediation:{rollback}"
    by_stream = _seqs(client.get(f"/log/?stream={stream}").content.decode())
    assert by_stream == list(
        Event.objects.filter(stream_type="remediation", stream_id=rollback)
        .order_by("-seq")
        .values_list("seq", flat=True)
    )
    by_text = client.get("/log/?q=holdout").content.decode()
    assert _seqs(by_text) and all(
        "holdout" in bytes(Event.objects.get(seq=seq).canonical).decode() for seq in _seqs(by_text)
    )
    by_model = _seqs(client.get("/log/?model=credit").content.decode())
    assert len(by_model) == min(50, Event.objects.exclude(stream_type="person").count())
    assert _seqs(client.get("/log/?since=2000-01-01T00:00&until=2000-01-02T00:00").content.decode()) == []


def test_bad_filters_are_named_and_nothing_is_listed(people, rollback):
    client = signed_in(people["auditor"])
    for query, field in [
        ("since=yesterday", "since"),
        ("stream=nocolon", "stream"),
        ("correlation=abc", "correlation"),
        ("since=2026-02-01T00:00&until=2026-01-01T00:00", "until"),
        ("limit=100000", "limit"),
    ]:
        answer = client.get(f"/log/?{query}")
        assert answer.status_code == 400, query
        assert f"<strong>{field}</strong>" in answer.content.decode()
        assert _seqs(answer.content.decode()) == []


def test_an_htmx_filter_gets_only_the_results(people, rollback):
    answer = signed_in(people["auditor"]).get(
        "/log/?type=monitoring.RemediationApproved", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="log-results"
    )
    page = answer.content.decode()
    assert answer.status_code == 200 and "<html" not in page and "<table" in page


def test_an_event_page_shows_what_was_signed_and_its_thread(people, rollback):
    approval = Event.objects.filter(event_type="monitoring.RemediationApproved", stream_id=rollback).get()
    answer = signed_in(people["auditor"]).get(f"/log/{approval.seq}/")
    page = answer.content.decode()
    assert answer.status_code == 200
    assert "approved the rollback of credit to 1.0" in page  # the sentence names the request it decides
    assert bytes(approval.hash).hex() in page
    check = json.loads(
        re.search(r'<script id="event-check" type="application/json">(.*?)</script>', page, re.S).group(1)
    )
    canonical = check["canonical"].encode()
    assert canonical == bytes(approval.canonical)
    assert hashlib.sha256(canonical).hexdigest() == check["hash"]
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(check["public_key"])).verify(
        base64.b64decode(check["signature"]), canonical
    )
    assert rfc8785.dumps(json.loads(canonical)) == canonical
    thread = re.search(r'<ol class="thread">(.*?)</ol>', page, re.S).group(1)
    types_in_thread = [Event.objects.get(seq=int(seq)).event_type for seq in re.findall(r"#(\d+) ·", thread)]
    assert (
        types_in_thread.index("monitoring.RemediationRequested")
        < types_in_thread.index("monitoring.RemediationApproved")
        < types_in_thread.index("monitoring.RemediationSucceeded")
    )
    assert "drift on income &lt;b&gt;" in page  # the reason, escaped


def test_an_unknown_event_is_404(people):
    assert signed_in(people["auditor"]).get("/log/999999/").status_code == 404


def test_every_page_carries_the_strict_content_security_policy_and_no_inline_script(people, rollback):
    client = signed_in(people["admin"])
    for url in (
        "/",
        "/log/",
        f"/log/{Event.objects.order_by('-seq').first().seq}/",
        "/evidence/",
        "/integrity/",
        "/people/",
        "/password/",
    ):
        answer = client.get(url)
        policy = answer["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        for tag in re.findall(r"<script[^>]*>", answer.content.decode()):
            assert "src=" in tag or 'type="application/json"' in tag, (url, tag)
    assert "Content-Security-Policy" in Client().get("/signin/")


def test_an_event_links_to_the_page_of_what_it_is_about(people, rollback):
    approval = Event.objects.filter(event_type="monitoring.RemediationApproved", stream_id=rollback).get()
    page = signed_in(people["auditor"]).get(f"/log/{approval.seq}/").content.decode()
    assert f'<a href="/remediations/{rollback}/">its page</a>' in page
    person_event = Event.objects.filter(stream_type="person").first()
    assert "its page" not in signed_in(people["auditor"]).get(f"/log/{person_event.seq}/").content.decode()
