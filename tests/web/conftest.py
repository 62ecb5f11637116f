"""Helpers for the page tests: people sign in through the real sign-in page (password, then
the authenticator's code when they have one), and codes are computed as an app would."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.monitoring.conftest import PASSWORD, credit_model, people  # noqa: F401 - fixtures, shared

HTML_PAGES = ("/", "/log/", "/evidence/", "/integrity/", "/people/", "/password/")


def code_of(device: TOTPDevice, ahead: int = 0) -> str:
    """The code an authenticator app shows for `device`, `ahead` time steps from now (a code is
    accepted once, so a second sign-in in the same step uses the next one)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def signed_in(user, *, code_ahead: int = 0) -> Client:
    """A browser-like client that signed in as `user` through the pages."""
    client = Client()
    answer = client.post("/signin/", {"username": user.username, "password": PASSWORD})
    if answer.status_code == 302 and answer["Location"].startswith("/signin/code/"):
        device = TOTPDevice.objects.get(user=user, confirmed=True)
        answer = client.post("/signin/code/", {"code": code_of(device, code_ahead)})
    assert answer.status_code == 302 and not answer["Location"].startswith("/signin"), answer
    return client


@pytest.fixture(autouse=True)
def codes_without_waiting(settings):
    """django-otp makes a device wait (1 s, 2 s, 4 s, ...) after each wrong code; the tests that
    try wrong codes do not wait. tests/web/test_signin.py checks the wait itself."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
