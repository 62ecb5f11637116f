"""Each role's journey through the served demo, in a real Chromium: find the rollback decision,
read its thread, verify it in the browser, export its evidence and verify that offline; manage
people; be refused what the role may not see; be locked out. Every page is checked with axe."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ROOT, assert_accessible, console_problems, screenshot, sign_in


@pytest.mark.parametrize(("username", "full_name"), [("olga", "Olga Petrova"), ("ada", "Ada Lovelace")])
def test_a_reader_of_the_log_verifies_the_rollback_decision_and_its_evidence(
    demo_site, watched, tmp_path, username, full_name
):
    """A compliance officer and an auditor: sign in, find the demo's rollback decision, read its
    thread, see the browser verify it, export the model's evidence, verify that offline."""
    page = watched
    shots = username == "olga"  # one set of screenshots for docs/ui.md
    sign_in(page, demo_site, username)
    expect(page.get_by_role("heading", name=f"Welcome, {full_name}")).to_be_visible()
    assert_accessible(page)
    if shots:
        screenshot(page, "home")

    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    assert_accessible(page)
    if shots:
        screenshot(page, "log")

    page.get_by_label("Event type").select_option("monitoring.RemediationApproved")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"type=monitoring\.RemediationApproved"))  # shareable, back-button safe
    rows = page.locator("#log-results tbody tr")
    expect(rows.first).to_contain_text("approved")
    assert all("approved" in text for text in rows.all_inner_texts())
    # The demo's decision: the earliest rollback approval (other tests may have added later ones).
    page.get_by_role("link", name=re.compile(r"approved the rollback of credit-default to 2026\.10\.1")).last.click()

    check = page.locator("#check")
    expect(check).to_have_attribute("data-outcome", "verified", timeout=10_000)
    expect(page.locator("#check-results li.ok")).to_have_count(6)
    thread = page.locator("ol.thread")
    expect(thread).to_contain_text("requested the rollback of credit-default")
    expect(thread.locator("li.current")).to_contain_text("approved the rollback")
    expect(thread).to_contain_text("carried out the rollback of credit-default")
    assert_accessible(page)
    if shots:
        screenshot(page, "event")

    # The same check on tampered copies: a changed proof, a changed envelope.
    outcomes = page.evaluate(
        """async () => {
            const original = JSON.parse(document.getElementById('event-check').textContent);
            const flip = (hex) => (hex[0] === '0' ? '1' : '0') + hex.slice(1);
            const proof = structuredClone(original);
            proof.proof.path[0] = flip(proof.proof.path[0]);
            const envelope = structuredClone(original);
            envelope.canonical = envelope.canonical.replace('Evidence supports', 'Evidence refutes');
            const run = async (copy) =>
                Object.fromEntries((await window.driftledgerVerify(copy)).map(r => [r.name, r.ok]));
            return {proof: await run(proof), envelope: await run(envelope), original: await run(original)};
        }"""
    )
    assert outcomes["original"] == dict.fromkeys(["hash", "key", "signature", "leaf", "proof", "checkpoint"], True)
    assert outcomes["proof"] == {**outcomes["original"], "proof": False}
    assert outcomes["envelope"]["hash"] is False and outcomes["envelope"]["signature"] is False

    page.get_by_role("link", name="export evidence").click()
    page.get_by_label("Model").select_option("credit-default")
    page.get_by_role("button", name="Start export").click()
    row = page.locator("tbody tr").first
    expect(row.locator(".status")).to_have_text("done", timeout=60_000)  # the worker's progress, polled by htmx
    assert_accessible(page)
    if not shots:
        screenshot(page, "evidence")
    with page.expect_download() as download:
        row.get_by_role("link", name=re.compile(r"^evidence-")).click()
    bundle = tmp_path / "bundle.zip"
    download.value.save_as(bundle)
    command = page.locator("#verify-command").inner_text()
    log_id = re.search(r"--log-id (\S+)", command).group(1)

    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Integrity").click()
    expect(page.get_by_role("heading", name="Latest checkpoint")).to_be_visible()
    assert_accessible(page)
    if not shots:
        screenshot(page, "integrity")
    with page.expect_download() as key:
        page.locator("a[download]").first.click()  # the first key: the trust anchor the rotation chains from
    trusted = tmp_path / "trusted.pem"
    key.value.save_as(trusted)

    verified = subprocess.run(  # our interpreter, our verifier
        [sys.executable, "-m", "audit.verifier", str(bundle), "--trusted-key", str(trusted), "--log-id", log_id],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("VALID")

    # Neither sees administration: not in the navigation, not by address.
    expect(page.get_by_role("navigation", name="Pages").get_by_role("link", name="People")).to_have_count(0)
    answer = page.goto(f"{demo_site.url}/people/")
    assert answer.status == 403
    expect(page.get_by_role("alert")).to_contain_text("admin")


def test_an_admin_registers_a_person_whose_changes_are_in_the_log(demo_site, watched):
    page = watched
    sign_in(page, demo_site, "dana")
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="People").click()
    assert_accessible(page)
    screenshot(page, "people")
    form = page.locator("form", has=page.get_by_role("button", name="Register"))
    form.get_by_label("Username").fill("erin")
    form.get_by_label("Full name").fill("Erin Moss")
    form.get_by_label("First password").fill("erin-first-passphrase")
    form.get_by_label("auditor").check()
    form.get_by_label("Reason").fill("joins internal audit")
    form.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", name=re.compile("Erin Moss"))).to_be_visible()
    page.get_by_label("Grant").select_option("compliance_officer")
    page.get_by_label("because").fill("covers the compliance rota")
    page.get_by_role("button", name="Grant role").click()
    expect(page.get_by_role("status")).to_contain_text("Gave erin the compliance_officer role")
    assert_accessible(page)
    screenshot(page, "person")

    page.get_by_role("link", name="their events in the audit log").click()
    results = page.locator("#log-results")
    expect(results).to_contain_text("Dana Whitfield registered Erin Moss (erin): joins internal audit")
    expect(results).to_contain_text("gave erin the compliance officer role: covers the compliance rota")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, demo_site, "erin", "erin-first-passphrase")
    expect(page.get_by_role("navigation", name="Pages").get_by_role("link", name="Audit log")).to_be_visible()


def test_an_engineer_is_refused_the_log_by_address(demo_site, watched):
    page = watched
    sign_in(page, demo_site, "alice")
    answer = page.goto(f"{demo_site.url}/log/")
    assert answer.status == 403
    expect(page.get_by_role("alert")).to_contain_text("auditor")
    assert_accessible(page)


def test_a_locked_out_person_is_told_until_when(demo_site, watched):
    page = watched
    for _ in range(4):
        sign_in(page, demo_site, "mallory", "guess")
        expect(page.get_by_role("alert")).to_contain_text("do not match")
    assert_accessible(page)
    sign_in(page, demo_site, "mallory", "guess")  # the fifth locks the name out from this address
    expect(page.get_by_role("heading", name="Sign-in refused for now")).to_be_visible()
    sign_in(page, demo_site, "mallory", "another guess")  # refused without being tried
    expect(page.get_by_role("heading", name="Sign-in refused for now")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text(re.compile(r"try again at \d\d:\d\d UTC, in 1[45] minutes"))
    assert_accessible(page)
    screenshot(page, "locked")


def test_a_content_security_policy_violation_is_caught(demo_site, page):
    problems = console_problems(page)
    page.goto(f"{demo_site.url}/signin/")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.owned = 1'; "
        "document.body.append(s); }"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.owned") is None
    assert any("Content Security Policy" in problem for problem in problems), problems


def test_the_api_documentation_renders_under_the_policy(demo_site, watched):
    page = watched
    page.goto(f"{demo_site.url}/api/v1/docs/")
    expect(page.get_by_text("Driftledger API")).to_be_visible(timeout=15_000)
    expect(page.get_by_text("/api/v1/audit/events/").first).to_be_visible()
