"""Integrity: the latest signed checkpoint, the witnesses and what each last received, the
signing keys (public halves downloadable as PEM), the last verifications of the log, and the
partitions archived to storage as segments."""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from audit import cosigning
from audit.models import (
    Checkpoint,
    Cosignature,
    LogInfo,
    LogSegment,
    LogVerification,
    SigningKeyRecord,
    WitnessDelivery,
)
from audit.tasks import VERIFY_TIME_LIMIT
from audit.witnesses import configured_witnesses
from web.access import page_view


@page_view("integrity")
def integrity(request: HttpRequest) -> HttpResponse:
    keys = list(SigningKeyRecord.objects.order_by("valid_from_seq"))
    for key, following in zip(keys, [*keys[1:], None], strict=True):
        key.valid_to_seq = following.valid_from_seq - 1 if following else None
    delivered = {row.name: row for row in WitnessDelivery.objects.all()}
    cosigners = cosigning.configured()
    names = [witness.describe() for witness in configured_witnesses()] + [w.describe() for w in cosigners]
    info = LogInfo.objects.first()
    checkpoint = Checkpoint.objects.order_by("-tree_size").first()
    by_id = {witness.witness_id: witness.name for witness in cosigners}
    cosigned = (
        Cosignature.objects.filter(checkpoint=checkpoint).values_list("witness_id", flat=True) if checkpoint else []
    )
    context = {
        "log_id": info.log_id if info else None,
        "checkpoint": checkpoint,
        "cosigned_by": [by_id.get(witness_id, f"witness {witness_id}") for witness_id in cosigned],
        "freshest": cosigning.freshest_cosigned(),
        "stale_seconds": settings.AUDIT_COSIGNED_STALE_SECONDS,
        "witnesses": [(name, delivered.get(name)) for name in names],
        "keys": keys,
        "verifications": LogVerification.objects.all()[:10],
        "abandoned_before": timezone.now() - dt.timedelta(seconds=VERIFY_TIME_LIMIT),
        "every_hours": settings.AUDIT_VERIFY_EVERY_HOURS,
        "new_every_minutes": settings.AUDIT_VERIFY_NEW_EVERY_MINUTES,
        "segments": LogSegment.objects.order_by("first_seq"),
    }
    return render(request, "web/integrity.html", context)


@page_view("integrity")
def key_pem(request: HttpRequest, key_id: str) -> HttpResponse:
    key = SigningKeyRecord.objects.filter(key_id=key_id).first()
    if key is None:
        raise Http404(f"no signing key {key_id}")
    pem = Ed25519PublicKey.from_public_bytes(bytes(key.public_key)).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    answer = HttpResponse(pem, content_type="application/x-pem-file")
    answer["Content-Disposition"] = f'attachment; filename="driftledger-{key_id}.pem"'
    return answer
