"""An administrator requires a second factor of administrators, then enrols one at the next
sign-in and signs in with codes afterwards (it runs last: it changes how admins sign in)."""

from __future__ import annotations

import base64

from django_otp.oath import totp
from playwright.sync_api import expect

from tests.browser.conftest import assert_accessible, screenshot, sign_in


def _code(secret: str, ahead: int = 0) -> str:
    """What an authenticator app shows for the key on the page, `ahead` time steps from now."""
    text = secret.replace(" ", "")
    return f"{totp(base64.b32decode(text + '=' * (-len(text) % 8)), drift=ahead):06d}"


def test_an_admin_enrols_a_second_factor_when_the_role_requires_it(demo_site, watched):
    page = watched
    sign_in(page, demo_site, "dana")
    page.get_by_role("navigation", name="Pages").get_by_role("link", name="People").click()
    policy = page.locator("form", has=page.get_by_role("button", name="Change the policy"))
    policy.get_by_label("admin").check()
    policy.get_by_label("risk approver").check()
    policy.get_by_label("Reason").fill("administrators and approvers show a second factor")
    policy.get_by_role("button", name="Change the policy").click()
    expect(page.get_by_role("status")).to_contain_text("sign-in policy is changed")

    page.goto(f"{demo_site.url}/people/")  # the session has shown no code: it has ended
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    sign_in(page, demo_site, "dana")
    expect(page.get_by_role("heading", name="Enrol an authenticator")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "enrol")
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Code shown by the app").fill(_code(secret))
    page.get_by_role("button", name="Enrol and continue").click()
    expect(page.get_by_role("status")).to_contain_text("authenticator is enrolled")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, demo_site, "dana")
    expect(page.get_by_role("heading", name="Code from your authenticator")).to_be_visible()
    assert_accessible(page)
    screenshot(page, "code")
    page.get_by_label("Code").fill(_code(secret, 1))  # the current one was used: the next step's
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Welcome, Dana Whitfield")).to_be_visible()
    page.goto(f"{demo_site.url}/log/?type=monitoring.SecondFactorEnrolled")
    expect(page.locator("#log-results")).to_contain_text("dana enrolled an authenticator app")
