"""The demo: a credit-scoring model's audit trail, from registration to an approved rollback."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.test import Client

from audit.envelope import format_time
from audit.evidence import EvidenceQuery, blob_save, evidence_export
from audit.keys import SigningKey, public_key_from_raw
from audit.models import Event
from audit.rotation import signing_key_rotate
from audit.selectors import signing_keys, stream_version
from audit.store import Actor, NewEvent, RecordedEvent, append
from audit.verify import verify_log
from monitoring.models import Deployment, RegisteredModel, Remediation
from monitoring.selectors import window_load
from monitoring.services.registry import api_key_issue, deployment_change, model_register, version_register
from monitoring.services.remediations import remediation_decide, remediation_request
from monitoring.stats.drift import drift_report

MODEL = "credit-default"
ALICE = Actor("user", "alice", "Alice Martin (ML engineer)")
BOB = Actor("user", "bob", "Bob Okafor (risk approver)")
SCHEDULER = Actor("service", "monitoring-worker", "Driftledger monitoring worker")
OPERATOR = Actor("user", "ops", "Platform operator")
AUDITOR = Actor("user", "ada", "Ada Lovelace (auditor)")


class Command(BaseCommand):
    help = "Run the Driftledger demo on the configured database (embedded PostgreSQL by default)."

    def handle(self, *args, **options):
        started = time.perf_counter()
        say = self.stdout.write
        api_key = self._registry(say)
        run_id, correlation, completed = self._monitoring_run(say, api_key)

        threshold = NewEvent(
            "policy",
            MODEL,
            "monitoring.ThresholdChanged",
            {
                "model": MODEL,
                "check": "feature_drift",
                "metric": "psi",
                "feature": "income",
                "level": "critical",
                "previous": 0.25,
                "new": 0.2,
            },
            ALICE,
            reason="Income is the strongest predictor; tighten PSI to catch shifts earlier.",
        )
        (changed,) = append([threshold], expected={("policy", MODEL): stream_version("policy", MODEL)})
        say(f"4. {ALICE.name} tightened the PSI threshold on income 0.25 -> 0.20 (seq {changed.seq}).")

        alert_id = str(uuid.uuid4())
        (alert,) = append(
            [
                NewEvent(
                    "alert",
                    alert_id,
                    "monitoring.AlertRaised",
                    {
                        "alert_id": alert_id,
                        "model": MODEL,
                        "check": "feature_drift",
                        "severity": "critical",
                        "feature": "income",
                        "run_id": run_id,
                        "summary": "PSI 0.31 on income (critical >= 0.20); AUC estimated down 0.04",
                    },
                    SCHEDULER,
                    correlation_id=correlation,
                    causation_id=completed.event_id,
                )
            ],
            expected={("alert", alert_id): 0},
        )
        say(f"5. Critical alert raised on income drift (seq {alert.seq}).")

        request_id = remediation_request(
            model=MODEL,
            kind="rollback",
            parameters={"to_version": "2026.10.1"},
            evidence=[alert.event_id, completed.event_id],
            actor=ALICE,
            reason="Roll back to the October model while we retrain on recent data.",
        )
        requested = Remediation.objects.get(request_id=request_id)
        cited = "citing the run and the alert"
        say(f"6. {ALICE.name} requested a rollback to 2026.10.1 (seq {requested.requested_seq}), {cited}.")

        key = SigningKey.generate()
        rotated = signing_key_rotate(new_key=key, actor=OPERATOR, reason="Quarterly signing-key rotation.")
        say(f"7. Signing key rotated at seq {rotated.seq}: {rotated.payload['previous_key_id']} -> {key.key_id}.")

        serving = Client(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
        before = serving.get(f"/api/v1/models/{MODEL}/deployment/")
        bob = _demo_user("bob", "Bob", "Okafor", "risk_approver")
        remediation_decide(
            request_id=request_id,
            decision="approve",
            user=bob,
            password=DEMO_PASSWORD,
            reason="Evidence supports rollback; four-eyes satisfied.",
        )
        approval = Event.objects.get(
            stream_type="remediation", stream_id=request_id, event_type="monitoring.RemediationApproved"
        )
        signed = approval.payload
        say(
            f"8. {signed['signer_name']} (risk approver) re-entered his password and approved it: signed "
            f"{signed['signed_at']}, meaning {signed['meaning']!r} (seq {approval.seq}, key {approval.key_id})."
        )
        after = serving.get(f"/api/v1/models/{MODEL}/deployment/", HTTP_IF_NONE_MATCH=before.headers["ETag"])
        state = Remediation.objects.get(request_id=request_id).state
        etags = f"ETag {before.headers['ETag']} -> {after.headers['ETag']}"
        champion = after.json()["champion"]
        say(f"9. The rollback executed ({state}): champion {champion}; serving's next poll sees it ({etags}).")

        report = verify_log()
        if not report.ok:
            self.stderr.write(f"10. Verification FAILED at seq {report.failure.seq}: {report.failure.reason}")
            raise SystemExit(1)
        say(
            f"10. Verified the whole log: {report.events} events, {report.keys} keys, chain intact, "
            f"every signature valid ({report.seconds:.2f} s)."
        )
        self._evidence(say)
        say(f"Demo finished in {time.perf_counter() - started:.1f} s.")

    def _registry(self, say) -> str:
        """Alice registers the model and its versions, promotes them, and issues the scoring
        service its reporting key."""
        if not RegisteredModel.objects.filter(name=MODEL).exists():
            model_register(
                name=MODEL,
                task="binary_classification",
                owner="alice",
                data_schema=DATA_SCHEMA,
                description="Probability of default within 12 months for retail credit applications.",
                actor=ALICE,
                reason="New credit-scoring model enters production.",
            )
            for version in ("2026.10.1", "2026.11.0"):
                version_register(
                    name=MODEL, version=version, artifact_uri=f"s3://models/{MODEL}/{version}", actor=ALICE
                )
                deployment_change(name=MODEL, action="promote", version=version, actor=ALICE, reason="Release.")
            say(f"1. {ALICE.name} registered {MODEL!r} with versions 2026.10.1 and 2026.11.0; champion 2026.11.0.")
        else:
            if Deployment.objects.get(model_id=MODEL).champion != "2026.11.0":  # rolled back on an earlier run
                deployment_change(
                    name=MODEL, action="promote", version="2026.11.0", actor=ALICE, reason="Retrained; released again."
                )
            say(f"1. Model {MODEL!r} is already registered; continuing its history (champion 2026.11.0).")
        key_id, api_key = api_key_issue(name=MODEL, label="scoring service", expires_at=None, actor=ALICE)
        say(f"   Reporting key {key_id}… issued to the scoring service (shown once; only its SHA-512 hash is kept).")
        return api_key

    def _monitoring_run(self, say, api_key: str) -> tuple[str, str, RecordedEvent]:
        """The scoring service reports its reference and a day of predictions over the API (income
        has shifted); a monitoring run measures drift on that window and records the result."""
        client = Client(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
        now = dt.datetime.now(dt.UTC)
        reference, current = (
            _scored_rows(now - dt.timedelta(days=8), 0.0),
            _scored_rows(now - dt.timedelta(days=1), 0.6),
        )
        for kind, rows in (("reference", reference), ("predictions", current)):
            answer = client.post(f"/api/v1/models/{MODEL}/{kind}/", orjson.dumps(rows), content_type="application/json")
            if answer.status_code not in (200, 201):
                self.stderr.write(f"2. Reporting {kind} failed: {answer.status_code} {answer.content[:300]!r}")
                raise SystemExit(1)
        posted = f"POST /api/v1/models/{MODEL}/predictions/: {answer.status_code}, batch seq {answer.json()['seq']}"
        counts = f"{len(reference):,} reference rows and {len(current):,} predictions"
        say(f"2. The scoring service reported {counts} ({posted}).")
        window = dict(start=now - dt.timedelta(days=2), end=now)
        ref = window_load(model=MODEL, kind="reference").columns
        cur = window_load(model=MODEL, **window).columns
        kinds = {"income": "numerical", "debt_ratio": "numerical", "age": "numerical", "region": "categorical"}
        report = drift_report(ref, cur, kinds)
        checks = [_check(item) for item in report]
        run_id, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        result = {"run_id": run_id, "window": {k: format_time(v) for k, v in window.items()}, "checks": checks}
        digest = blob_save(json.dumps(result, sort_keys=True).encode())
        begun = {"run_id": run_id, "model": MODEL, "policy_version": 1, "window": result["window"]}
        done = {"run_id": run_id, "model": MODEL, "status": "completed", "checks": checks, "result_digest": digest}
        events = [
            NewEvent("run", run_id, "monitoring.RunStarted", begun, SCHEDULER, correlation_id=correlation),
            NewEvent("run", run_id, "monitoring.RunCompleted", done, SCHEDULER, correlation_id=correlation),
        ]
        started_event, completed = append(events, expected={("run", run_id): 0})
        drifted = ", ".join(c["feature"] for c in checks if c["status"] == "drift") or "nothing"
        income = next(c for c in checks if c["feature"] == "income")
        measured = f"income: normed Wasserstein {income['effect']:.2f}, KS p = {income['p_value']:.1e}"
        seqs = f"seq {started_event.seq}-{completed.seq}"
        say(f"3. Monitoring run {run_id[:8]} ({seqs}): drift in {drifted} ({measured}).")
        return run_id, correlation, completed

    def _evidence(self, say) -> None:
        """Checkpoint, export the model's evidence, and verify it offline as an auditor would."""
        evidence_dir = Path(settings.DATA_DIR) / "evidence"
        bundle = evidence_dir / f"demo-{MODEL}.zip"
        summary = evidence_export(query=EvidenceQuery(model=MODEL, include_data=True), out=bundle, created_by=AUDITOR)
        witness = settings.AUDIT_WITNESSES[0]["options"].get("path", "the configured witnesses")
        say(f"11. Signed checkpoint at tree size {summary.tree_size}, published to the witness {witness}.")
        say(f"12. Evidence bundle for {MODEL!r}: {summary.events} events, {summary.data_files} data file(s): {bundle}")
        genesis = signing_keys()[0]
        trusted = evidence_dir / f"trusted-{genesis.key_id}.pem"
        trusted.write_bytes(
            public_key_from_raw(genesis.public_raw).public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        offline = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "audit.verifier", str(bundle), "--trusted-key", str(trusted)],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parents[3],
        )
        if offline.returncode != 0:
            self.stderr.write(f"13. Offline verification FAILED: {offline.stderr.strip()}")
            raise SystemExit(1)
        say(f"13. Offline verifier (python -m audit.verifier, trusting only the first key): {offline.stdout.strip()}")


DATA_SCHEMA = {
    "numerical": ["income", "debt_ratio", "age"],
    "categorical": ["region"],
    "id": "application_id",
    "timestamp": "scored_at",
    "prediction": "default_score",
    "target": "defaulted",
    "segments": ["region"],
}


DEMO_PASSWORD = "demo-only-password"  # noqa: S105 - demo accounts on the demo database


def _demo_user(username: str, first: str, last: str, role: str):
    """A person for the story (created on first use; the password is the demo's)."""
    user, _ = User.objects.get_or_create(username=username, defaults={"first_name": first, "last_name": last})
    user.set_password(DEMO_PASSWORD)
    user.save()
    user.groups.add(Group.objects.get(name=role))
    return user


def _scored_rows(day: dt.datetime, income_shift: float, rows: int = 5_000) -> list[dict]:
    """A day of scored applications; income moves by `income_shift` reference sds."""
    rng = np.random.default_rng(int(day.timestamp()) // 86_400 + int(income_shift * 10))
    income = rng.lognormal(10.6 + 0.35 * income_shift, 0.35, rows)
    start = day.replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        {
            "application_id": f"app-{day:%Y%m%d}-{income_shift}-{i}",
            "scored_at": format_time(start + dt.timedelta(seconds=int(i * 86_400 / rows))),
            "income": round(float(income[i]), 2),
            "debt_ratio": round(float(rng.beta(2, 5)), 4),
            "age": int(rng.integers(21, 75)),
            "region": str(rng.choice(["north", "south", "east", "west"])),
            "default_score": round(float(rng.beta(2, 12)), 4),
        }
        for i in range(rows)
    ]


def _check(item) -> dict:
    test = item.measures.ks if item.kind == "numerical" else item.measures
    return {
        "check": "feature_drift",
        "feature": item.feature,
        "method": f"{item.method.test}+{item.method.effect}",
        "effect": round(item.decision.effect, 6),
        "effect_floor": item.decision.effect_floor,
        "p_value": float(f"{item.decision.adjusted_p_value:.6g}"),
        "statistic": round(float(getattr(test, "statistic", getattr(test, "chi2", 0.0))), 6),
        "status": "drift" if item.decision.drifted else "ok",
    }
