"""The monitoring pages in a real Chromium on the served demo: an engineer goes from the
overview to the drifting feature in three clicks and requests a rollback citing the run; a risk
approver signs it (a wrong password first, refused and recorded nowhere) and sees the signature
as signed; the requester watches it execute. An approver's own break-glass request is reviewed
by another approver only."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import assert_accessible, console_problems, screenshot, sign_in


def test_from_the_overview_to_a_signed_rollback(demo_site, browser):
    engineer_context, approver_context = browser.new_context(), browser.new_context()
    engineer, approver = engineer_context.new_page(), approver_context.new_page()
    problems_engineer, problems_approver = console_problems(engineer), console_problems(approver)

    sign_in(engineer, demo_site, "alice")
    engineer.get_by_role("navigation", name="Pages").get_by_role("link", name="Models").click()  # 1
    expect(engineer.get_by_role("heading", name="Models")).to_be_visible()
    assert_accessible(engineer)
    screenshot(engineer, "models")
    engineer.get_by_role("link", name="credit-default").click()  # 2
    first_chart = engineer.locator("figure.chart-card").first
    expect(first_chart).to_contain_text("feature drift · income")
    assert_accessible(engineer)
    screenshot(engineer, "model")
    engineer.locator("#runs-title + table tbody tr").first.get_by_role("link").click()  # 3
    expect(engineer.get_by_role("heading", name=re.compile("Diagnosis: covariate shift"))).to_be_visible()
    income = engineer.locator("#kind-feature_drift + table tr", has_text="income")
    expect(income.locator(".status")).to_have_text("critical")
    distribution = engineer.locator("section[aria-labelledby=dist-title] .chart-card", has_text="income")
    distribution.scroll_into_view_if_needed()  # distributions load as they scroll into view
    expect(distribution.locator("svg.histogram")).to_be_visible()
    assert_accessible(engineer)
    screenshot(engineer, "run")

    engineer.get_by_role("link", name=re.compile("Request a remediation citing this run")).click()
    engineer.get_by_label("What to do").select_option("rollback")
    engineer.get_by_label(re.compile("Roll back to")).select_option("2026.11.0")
    engineer.get_by_label("Reason").fill("Income drifted again on 2026.10.1: back to November while we retrain")
    assert_accessible(engineer)
    engineer.get_by_role("button", name="File the request").click()
    expect(engineer.locator("#state")).to_contain_text("requested")
    request_url = engineer.url

    sign_in(approver, demo_site, "bob")
    approver.get_by_role("navigation", name="Pages").get_by_role("link", name="Remediations").click()
    waiting = approver.locator("article", has_text="Income drifted again")
    expect(waiting).to_contain_text("covariate shift")  # the cited run's diagnosis, inline
    assert_accessible(approver)
    screenshot(approver, "remediations")
    waiting.get_by_role("link", name="Decide").click()
    approver.get_by_label("Reason").fill("The run shows the drift; rollback is the fastest safe fix")
    approver.get_by_label("Your password").fill("not-bobs-password")
    approver.get_by_role("button", name="Approve and sign").click()
    expect(approver.get_by_role("status")).to_contain_text("re-authentication failed")
    expect(approver.locator(".signature")).to_have_count(0)

    approver.get_by_label("Reason").fill("The run shows the drift; rollback is the fastest safe fix")
    approver.get_by_label("Your password").fill("demo-only-password")
    approver.get_by_role("button", name="Approve and sign").click()
    signature = approver.locator(".signature")
    expect(signature).to_contain_text("Bob Okafor")
    expect(signature).to_contain_text("meaning: approved")
    assert_accessible(approver)
    screenshot(approver, "decision")

    engineer.goto(request_url)
    expect(engineer.locator("#state")).to_contain_text("succeeded", timeout=30_000)  # the worker carries it out
    engineer.get_by_role("link", name="credit-default").first.click()
    expect(engineer.locator("dl.facts")).to_contain_text("champion 2026.11.0")
    assert not problems_engineer and not problems_approver, (problems_engineer, problems_approver)
    engineer_context.close()
    approver_context.close()


def test_an_approvers_own_break_glass_rollback_is_reviewed_by_another(demo_site, browser):
    carol_context, bob_context = browser.new_context(), browser.new_context()
    carol, bob = carol_context.new_page(), bob_context.new_page()
    sign_in(carol, demo_site, "carol")
    carol.goto(f"{demo_site.url}/alerts/?model=credit-default")
    incident = carol.locator("section.incident").first
    incident.get_by_role("link", name=re.compile("run ")).click()
    carol.get_by_role("link", name=re.compile("Request a remediation")).click()
    carol.get_by_label("What to do").select_option("rollback")
    carol.get_by_label(re.compile("Roll back to")).select_option("2026.10.1")
    carol.get_by_label("Reason").fill("Emergency: the November model misprices; back to October now")
    carol.get_by_label(re.compile("Break-glass")).check()
    carol.get_by_role("button", name="File the request").click()  # carried out at once: her password first
    expect(carol.locator(".message")).to_contain_text("re-enter your password")
    expect(carol.get_by_label(re.compile("Break-glass"))).to_be_checked()  # the form as she filled it
    carol.get_by_label(re.compile("Your password")).fill("demo-only-password")
    carol.get_by_role("button", name="File the request").click()
    expect(carol.locator("#state")).to_contain_text("succeeded", timeout=30_000)  # at once, reviewed afterwards
    expect(carol.get_by_role("button", name="Sign the review")).to_have_count(0)  # never her own
    url = carol.url

    sign_in(bob, demo_site, "bob")
    bob.goto(f"{demo_site.url}/remediations/")
    expect(bob.get_by_role("heading", name="Break-glass rollbacks to review")).to_be_visible()
    bob.goto(url)
    bob.get_by_label("Reason").fill("Reviewed with the pricing team: the rollback was right")
    bob.get_by_label("Your password").fill("demo-only-password")
    bob.get_by_role("button", name="Sign the review").click()
    expect(bob.locator(".signature", has_text="meaning: reviewed")).to_contain_text("Bob Okafor")
    assert_accessible(bob)
    carol_context.close()
    bob_context.close()


def test_an_engineer_previews_a_policy_change_before_submitting(demo_site, watched):
    page = watched
    sign_in(page, demo_site, "alice")
    page.goto(f"{demo_site.url}/models/credit-default/policy/")
    editor = page.get_by_label("Policy")
    text = editor.input_value()
    editor.fill(re.sub(r'"alpha": [0-9.e-]+', '"alpha": 0.2', text, count=1))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview")).to_contain_text("pure tightening")
    editor.fill(re.sub(r'"alpha": [0-9.e-]+', '"alpha": 0.0001', text, count=1))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview")).to_contain_text("needs approval")
    assert_accessible(page)
    screenshot(page, "policy")
    page.goto(f"{demo_site.url}/alerts/")
    assert_accessible(page)
    screenshot(page, "alerts")


def test_the_churn_and_recommender_situations_read_page_by_page(demo_site, watched):
    page = watched
    sign_in(page, demo_site, "alice")
    page.goto(f"{demo_site.url}/models/churn-telco/")
    page.locator("#runs-title + table tbody tr").first.get_by_role("link").click()
    expect(page.get_by_role("heading", name=re.compile("Diagnosis: covariate shift"))).to_contain_text(
        "region=online-apac"
    )
    region = page.locator("section[aria-labelledby=dist-title] .chart-card", has_text="region")
    region.scroll_into_view_if_needed()
    expect(region.locator("tr", has_text="online-apac")).to_contain_text("new")
    # Its outcomes came after the run: the diagnosis says it was revised, the cohort's collapse shows.
    expect(page.locator(".diagnosis .message")).to_contain_text("Revised (revision 1) when labels for 6000 rows")
    segment = page.locator("section[aria-labelledby=kind-segments] tr", has_text="region=online-apac").filter(
        has_text="roc_auc"
    )
    expect(segment).to_contain_text("critical")
    assert_accessible(page)
    screenshot(page, "churn-run")

    # Alice runs the window again: a new revision, listed beside the first once the worker ran it.
    first_url = page.url
    page.get_by_role("button", name="Run this window again").click()
    expect(page.locator(".messages")).to_contain_text("Revision 1 of this window is queued")
    for _ in range(60):  # the served worker runs it within seconds
        page.goto(first_url)
        again = page.locator("section[aria-labelledby=again-title] li", has_text="revision 1")
        if again.count() and "completed" in again.inner_text():
            break
        page.wait_for_timeout(500)
    expect(again).to_contain_text("completed")
    again.get_by_role("link").click()
    expect(page.locator("dl.facts")).to_contain_text("a re-run of")
    assert_accessible(page)

    page.goto(f"{demo_site.url}/models/recommender-home/")
    charts = page.locator("figure.chart-card")
    expect(charts.filter(has_text="kpis · ctr")).to_have_count(1)
    expect(charts.filter(has_text="data quality · user_activity").filter(has_text="null_rate")).to_have_count(1)
    causes = page.locator("#runs-title + table tbody tr td:nth-child(4)").all_inner_texts()
    assert [cause.split(" (")[0] for cause in causes[:3]] == ["user behaviour change", "no problem", "data quality"]
    assert_accessible(page)
    screenshot(page, "recommender")
