"""Password guessing: when one username is locked out from an address, and when an address
is throttled whatever usernames it tries.

django-axes records every failed login (the username tried, the address, the user agent; never
the password). Two limits read those records over the cool-off period (LOGIN_COOLOFF_HOURS):
LOGIN_FAILURE_LIMIT failures of one username from one address lock that pair out, so someone
else's guessing never locks you out; LOGIN_ADDRESS_FAILURE_LIMIT failures from one address,
across usernames, throttle the address (spraying one password over many accounts). A refusal
says which limit, and for how long (429 with Retry-After)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max, Sum


@dataclass(frozen=True)
class Lockout:
    seconds: int  # until a new attempt is considered
    reason: str


def lockout_of(address: str | None, username: str | None, *, now: dt.datetime | None = None) -> Lockout | None:
    """Whether a password login of `username` from `address` is refused now, and for how long."""
    if not address:
        return None
    moment = now or dt.datetime.now(dt.UTC)
    cooloff = dt.timedelta(hours=settings.AXES_COOLOFF_TIME)
    recent = AccessAttempt.objects.filter(ip_address=address, attempt_time__gte=moment - cooloff)
    checks = [
        (
            recent.filter(username=username),
            settings.AXES_FAILURE_LIMIT,
            f"too many failed logins for {username!r} from {address}",
        ),
        (recent, settings.LOGIN_ADDRESS_FAILURE_LIMIT, f"too many failed logins from {address}, across usernames"),
    ]
    for attempts, limit, reason in checks:
        counted = attempts.aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
        if (counted["failures"] or 0) >= limit:
            seconds = max(math.ceil((counted["last"] + cooloff - moment).total_seconds()), 1)
            return Lockout(seconds, reason)
    return None


def lockout_message(lockout: Lockout) -> str:
    minutes = math.ceil(lockout.seconds / 60)
    return f"{lockout.reason}: try again in {minutes} minute{'s' if minutes != 1 else ''} (Retry-After)"
