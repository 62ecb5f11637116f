"""The demo: a credit-scoring model's audit trail, from registration to an approved rollback."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.management.base import BaseCommand

from audit.evidence import EvidenceQuery, blob_save, evidence_export
from audit.keys import SigningKey, public_key_from_raw
from audit.rotation import signing_key_rotate
from audit.selectors import signing_keys, stream_version
from audit.store import Actor, NewEvent, append
from audit.verify import verify_log

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
        model_stream = ("model", MODEL)
        if stream_version(*model_stream) == 0:
            (registered,) = append([_registration()], expected={model_stream: 0})
            say(f"1. Registered model {MODEL!r} (seq {registered.seq}) by {ALICE.name}.")
        else:
            say(f"1. Model {MODEL!r} is already registered; continuing its history.")

        run_id = str(uuid.uuid4())
        correlation = str(uuid.uuid4())
        started_event, completed = append(_run_events(run_id, correlation), expected={("run", run_id): 0})
        drifted = [c["feature"] for c in completed.payload["checks"] if c["status"] == "drift"]
        say(f"2. Monitoring run {run_id[:8]} (seq {started_event.seq}-{completed.seq}): drift in {', '.join(drifted)}.")

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
        say(f"3. {ALICE.name} tightened the PSI threshold on income 0.25 -> 0.20 (seq {changed.seq}).")

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
        say(f"4. Critical alert raised on income drift (seq {alert.seq}).")

        request_id = str(uuid.uuid4())
        (requested,) = append(
            [
                NewEvent(
                    "remediation",
                    request_id,
                    "monitoring.RemediationRequested",
                    {
                        "request_id": request_id,
                        "model": MODEL,
                        "action": "rollback",
                        "parameters": {"to_version": "2026.10.1"},
                        "evidence": [alert.event_id, completed.event_id],
                    },
                    ALICE,
                    reason="Roll back to the October model while we retrain on recent data.",
                    correlation_id=correlation,
                    causation_id=alert.event_id,
                )
            ],
            expected={("remediation", request_id): 0},
        )
        say(f"5. {ALICE.name} requested a rollback to 2026.10.1 (seq {requested.seq}).")

        key = SigningKey.generate()
        rotated = signing_key_rotate(new_key=key, actor=OPERATOR, reason="Quarterly signing-key rotation.")
        say(f"6. Signing key rotated at seq {rotated.seq}: {rotated.payload['previous_key_id']} -> {key.key_id}.")

        (approved,) = append(
            [
                NewEvent(
                    "remediation",
                    request_id,
                    "monitoring.RemediationApproved",
                    {
                        "request_id": request_id,
                        "signer_name": "Bob Okafor",
                        "meaning": "approved",
                        "signed_at": rotated.envelope["occurred_at"],
                    },
                    BOB,
                    reason="Evidence supports rollback; four-eyes satisfied.",
                    correlation_id=correlation,
                    causation_id=requested.event_id,
                )
            ],
            expected={("remediation", request_id): 1},
        )
        say(f"7. {BOB.name} approved it (seq {approved.seq}, signed by the new key {approved.envelope['key_id']}).")

        report = verify_log()
        if not report.ok:
            self.stderr.write(f"8. Verification FAILED at seq {report.failure.seq}: {report.failure.reason}")
            raise SystemExit(1)
        say(
            f"8. Verified the whole log: {report.events} events, {report.keys} keys, chain intact, "
            f"every signature valid ({report.seconds:.2f} s)."
        )
        self._evidence(say)
        say(f"Demo finished in {time.perf_counter() - started:.1f} s.")

    def _evidence(self, say) -> None:
        """Checkpoint, export the model's evidence, and verify it offline as an auditor would."""
        evidence_dir = Path(settings.DATA_DIR) / "evidence"
        bundle = evidence_dir / f"demo-{MODEL}.zip"
        summary = evidence_export(query=EvidenceQuery(model=MODEL, include_data=True), out=bundle, created_by=AUDITOR)
        witness = settings.AUDIT_WITNESSES[0]["options"].get("path", "the configured witnesses")
        say(f"9. Signed checkpoint at tree size {summary.tree_size}, published to the witness {witness}.")
        say(f"10. Evidence bundle for {MODEL!r}: {summary.events} events, {summary.data_files} data file(s): {bundle}")
        genesis = signing_keys()[0]
        trusted = evidence_dir / f"trusted-{genesis.key_id}.pem"
        trusted.write_bytes(
            public_key_from_raw(genesis.public_raw).public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        offline = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "audit.verifier", str(bundle), "--trusted-key", str(trusted)],
            capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parents[3],
        )  # fmt: skip
        if offline.returncode != 0:
            self.stderr.write(f"11. Offline verification FAILED: {offline.stderr.strip()}")
            raise SystemExit(1)
        say(f"11. Offline verifier (python -m audit.verifier, trusting only the first key): {offline.stdout.strip()}")


def _registration() -> NewEvent:
    return NewEvent(
        "model",
        MODEL,
        "monitoring.ModelRegistered",
        {
            "name": MODEL,
            "task": "binary_classification",
            "owner": "alice",
            "description": "Probability of default within 12 months for retail credit applications.",
            "data_schema": {
                "numerical": ["income", "debt_ratio", "age", "utilization"],
                "categorical": ["region", "employment"],
                "prediction": "default_score",
                "target": "defaulted",
                "segments": ["region"],
            },
        },
        ALICE,
        reason="New credit-scoring model enters production.",
    )


def _run_events(run_id: str, correlation: str) -> list[NewEvent]:
    window = {"start": "2026-11-24T00:00:00.000000Z", "end": "2026-11-25T00:00:00.000000Z"}
    checks = [
        {
            "check": "feature_drift",
            "feature": "income",
            "method": "psi",
            "value": 0.31,
            "threshold": 0.2,
            "status": "drift",
        },
        {
            "check": "feature_drift",
            "feature": "debt_ratio",
            "method": "ks",
            "value": 0.021,
            "p_value": 0.41,
            "threshold": 0.05,
            "status": "ok",
        },
        {
            "check": "estimated_performance",
            "metric": "roc_auc",
            "value": 0.742,
            "reference": 0.781,
            "status": "degraded",
        },
    ]
    digest = blob_save(json.dumps({"run_id": run_id, "window": window, "checks": checks}, sort_keys=True).encode())
    return [
        NewEvent(
            "run",
            run_id,
            "monitoring.RunStarted",
            {"run_id": run_id, "model": MODEL, "policy_version": 3, "window": window},
            SCHEDULER,
            correlation_id=correlation,
        ),
        NewEvent(
            "run",
            run_id,
            "monitoring.RunCompleted",
            {"run_id": run_id, "model": MODEL, "status": "completed", "checks": checks, "result_digest": digest},
            SCHEDULER,
            correlation_id=correlation,
        ),
    ]
