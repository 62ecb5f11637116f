"""A Django system check: the quorum of every kind of request is a whole number of at least one
(a quorum of none would let a change through unapproved)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error

from monitoring.remediation.kinds import RemediationKind


def check_quorums(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    quorums = getattr(settings, "REMEDIATION_APPROVALS", {})
    for kind, quorum in quorums.items():
        if kind not in set(RemediationKind):
            errors.append(Error(f"REMEDIATION_APPROVALS names an unknown kind {kind!r}", id="monitoring.E001"))
        elif not (isinstance(quorum, int) and not isinstance(quorum, bool) and quorum >= 1):
            errors.append(Error(f"REMEDIATION_APPROVALS[{kind!r}] must be a whole number >= 1", id="monitoring.E002"))
    return errors
