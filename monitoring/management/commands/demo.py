"""The demo: a credit-scoring model's audit trail, from registration to an approved rollback.

It tells only what happened: it drives the product's own paths (people and roles, the registry,
the ingestion API, an approved policy change, a real run on the model's policy, the alerts that
run raised, the four-eyes workflow for every change of what serves), and every figure or
sentence it prints is read back from an event it caused.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.test import Client

from audit import events
from audit.envelope import format_time
from audit.evidence import EvidenceQuery, evidence_export
from audit.keys import SigningKey, public_key_from_raw
from audit.models import Cosignature, Event, LogInfo, LogVerification
from audit.rotation import signing_key_rotate
from audit.selectors import signing_keys
from audit.selfcheck import log_verify_recorded
from audit.store import Actor
from audit.witness_local import witness_create
from config.celery import app as celery_app
from driftledger.client import pointer_verify
from monitoring.access.domain import Role
from monitoring.access.services import people_record_existing, person_load, person_register, role_grant
from monitoring.alerting.domain import AlertStatus
from monitoring.alerting.models import Alert
from monitoring.management.commands._situations import churn_story, recommender_story
from monitoring.policies.services import policy_load
from monitoring.registry.models import Deployment, RegisteredModel
from monitoring.registry.services import api_key_issue, deployment_change, model_register, version_register
from monitoring.remediation.domain import STREAM as REMEDIATION_STREAM
from monitoring.remediation.models import Remediation
from monitoring.remediation.services import remediation_decide, remediation_request
from monitoring.runs.domain import STREAM as RUN_STREAM
from monitoring.runs.domain import CheckKind, Level, RunCompleted, RunDiagnosed
from monitoring.runs.services import run_execute

MODEL = "credit-default"
ALICE = Actor("user", "alice", "Alice Martin")
SETUP = Actor("user", "cli:demo", "Demo setup (command line)")
OPERATOR = Actor("user", "ops", "Platform operator")
AUDITOR = Actor("user", "ada", "Ada Lovelace")
DEMO_PASSWORD = "demo-only-password"  # noqa: S105 - demo accounts on the demo database
PEOPLE = (
    ("alice", "Alice Martin", Role.ML_ENGINEER),
    ("bob", "Bob Okafor", Role.RISK_APPROVER),
    ("carol", "Carol Chen", Role.RISK_APPROVER),
    ("ada", "Ada Lovelace", Role.AUDITOR),
    ("olga", "Olga Petrova", Role.COMPLIANCE_OFFICER),
    ("dana", "Dana Whitfield", Role.ADMIN),
)
INCOME_BY_PSI = {"drift": {"features": {"income": {"test": "ks", "effect": "psi", "floor": 0.2}}}}


def _log_keys() -> list[bytes]:
    """Every public key of the log, in PEM: what its operator hands to serving systems."""
    return [
        public_key_from_raw(key.public_raw).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for key in signing_keys()
    ]


def _demo_log_only() -> None:
    """The demo registers people with a known password, rotates the signing key and rolls a model
    back: signed events that can never be taken out of a log. It writes only to an empty log or
    to one it began itself."""
    first = Event.objects.order_by("seq").values_list("actor_id", flat=True).first()
    if first is not None and first != SETUP.id:
        raise CommandError(
            f"this database's log was not begun by the demo (its first event is by {first!r}): the demo "
            "would sign people with a known password, a key rotation and a rollback into it for good. "
            "Run it on an empty database: unset DATABASE_URL for the embedded one."
        )


class Command(BaseCommand):
    help = "Run the Driftledger demo on an empty database (embedded PostgreSQL by default), or on its own again."

    def handle(self, *args, **options):
        # The demo is one process telling a story in order: its tasks (the approved rollback's
        # execution, notifications, the export) run in it as they are sent. A served product
        # runs them on workers (`manage.py serve`); the web process never runs them.
        celery_app.conf.task_always_eager = True
        _demo_log_only()
        started = time.perf_counter()
        say = self.stdout.write
        self._people(say)
        api_key = self._registry(say)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self._report(say, api_key, now)
        self._policy(say)
        run_id, _, alert = self._monitoring_run(say, now)

        request_id = remediation_request(
            model=MODEL,
            kind="rollback",
            parameters={"to_version": "2026.10.1"},
            evidence=[run_id, str(alert.alert_id)],  # a run and an alert, cited by their own ids
            actor=ALICE,
            reason="Roll back to the October model while we retrain on recent data.",
        )
        requested = Remediation.objects.get(request_id=request_id).requested_seq
        say(f"6. {self._sentence(requested)}, citing the run and the alert (seq {requested}).")

        key = SigningKey.generate()
        rotated = signing_key_rotate(new_key=key, actor=OPERATOR, reason="Quarterly signing-key rotation.")
        say(f"7. {self._sentence(rotated.seq)} (seq {rotated.seq}).")

        serving = Client(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
        before = serving.get(f"/api/v1/models/{MODEL}/deployment/")
        approval = self._approve(request_id, "bob", "Evidence supports rollback; four-eyes satisfied.")
        say(f"8. {self._sentence(approval.seq)} (seq {approval.seq}, key {approval.key_id}).")
        after = serving.get(f"/api/v1/models/{MODEL}/deployment/", HTTP_IF_NONE_MATCH=before.headers["ETag"])
        state = Remediation.objects.get(request_id=request_id).state
        etags = f"ETag {before.headers['ETag']} -> {after.headers['ETag']}"
        pointer = after.json()
        pointer_verify(pointer, MODEL, _log_keys())  # as a serving system holding the log's keys does
        signer, size = pointer["signed"]["event"]["key_id"], pointer["signed"]["proof"]["tree_size"]
        say(
            f"9. The rollback executed ({state}): champion {pointer['champion']}; serving's next poll sees it "
            f"({etags}) and checks it against the log's public keys: the DeploymentChanged of seq {pointer['seq']}, "
            f"signed by {signer}, included in the checkpoint of size {size}."
        )
        self._reference_change(say, api_key, now)
        today = now.replace(hour=0, minute=0, second=0)
        churn_story(say, actor=ALICE, today=today, step=10)
        recommender_story(say, actor=ALICE, today=today, step=11)

        full = self._passed(log_verify_recorded(), step=12)
        say(
            f"12. Verified the whole log: {full.events_checked} events, {full.keys_checked} keys, chain intact, "
            f"every signature valid ({full.seconds:.2f} s; recorded, as the worker records its own)."
        )
        self._evidence(say)
        new = self._passed(log_verify_recorded(incremental=True), step=16)
        say(
            f"16. Verified the {new.events_checked - new.first_seq + 1} event(s) appended since "
            f"(seq {new.first_seq}..{new.events_checked}), chained to the head step 12 verified "
            f"({new.seconds:.2f} s); the worker does this every {settings.AUDIT_VERIFY_NEW_EVERY_MINUTES:g} "
            "minutes between full verifications."
        )
        say(f"Run {run_id} can be recomputed byte for byte: python manage.py reproduce_run {run_id}")
        say(f"Demo finished in {time.perf_counter() - started:.1f} s.")
        say(
            "Open it in a browser: `make serve` (or `python manage.py serve`), then http://127.0.0.1:8000/ and "
            f"sign in as olga (compliance officer), ada (auditor), dana (admin), bob or carol (risk approvers) or "
            f"alice (ML engineer), password {DEMO_PASSWORD!r}."
        )

    def _people(self, say) -> None:
        """The people of the story, registered with their roles (signed events)."""
        if any(User.objects.filter(username=u).exists() and not person_load(u).version for u, _, _ in PEOPLE):
            people_record_existing(actor=SETUP, reason="demo cast, from a log older than signed roles")
        for username, name, role in PEOPLE:
            person = person_load(username)
            if not person.version:
                person_register(
                    username=username,
                    full_name=name,
                    password=DEMO_PASSWORD,
                    roles=[role],
                    actor=SETUP,
                    reason="demo cast",
                )
            elif role not in person.roles:
                role_grant(username=username, role=role, actor=SETUP, reason="demo cast")
        cast = ", ".join(f"{name} ({role.label})" for _, name, role in PEOPLE)
        say(f"0. People: {cast}; each registration and role grant is a signed event.")

    def _registry(self, say) -> str:
        """Alice registers the model and its versions; the first champion goes live directly, the
        newer version through an approved request. The scoring service gets its reporting key."""
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
            deployment_change(name=MODEL, action="promote", version="2026.10.1", actor=ALICE, reason="First release.")
            say(f"1. {ALICE.name} registered {MODEL!r} with versions 2026.10.1 and 2026.11.0; 2026.10.1 went live.")
        else:
            say(f"1. Model {MODEL!r} is already registered; continuing its history.")
        if Deployment.objects.get(model_id=MODEL).champion != "2026.11.0":
            promotion = remediation_request(
                model=MODEL,
                kind="promote_challenger",
                parameters={"version": "2026.11.0"},
                evidence=[],
                actor=ALICE,
                reason="2026.11.0 validated offline: AUC 0.81 against 0.79.",
            )
            approval = self._approve(promotion, "bob", "Validation report reviewed.")
            say(f"   {self._sentence(approval.seq)}; champion now {Deployment.objects.get(model_id=MODEL).champion}.")
        key_id, api_key = api_key_issue(name=MODEL, label="scoring service", expires_at=None, actor=ALICE)
        say(f"   Reporting key {key_id}… issued to the scoring service (shown once; only its SHA-512 hash is kept).")
        return api_key

    def _report(self, say, api_key: str, now: dt.datetime) -> None:
        """The scoring service reports its reference (with outcomes) and a day of predictions
        over the API; income has shifted upwards since the reference period."""
        client = Client(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
        reference = _scored_rows(now - dt.timedelta(days=8), income_shift=0.0, seed=8, with_outcomes=True)
        current = _scored_rows(now - dt.timedelta(days=1), income_shift=0.6, seed=1)
        for kind, rows in (("reference", reference), ("predictions", current)):
            answer = client.post(f"/api/v1/models/{MODEL}/{kind}/", orjson.dumps(rows), content_type="application/json")
            if answer.status_code not in (200, 201):
                self.stderr.write(f"2. Reporting {kind} failed: {answer.status_code} {answer.content[:300]!r}")
                raise SystemExit(1)
        posted = f"POST /api/v1/models/{MODEL}/predictions/: {answer.status_code}, batch seq {answer.json()['seq']}"
        counts = f"{len(reference):,} reference rows and {len(current):,} predictions"
        say(f"2. The scoring service reported {counts} ({posted}).")

    def _reference_change(self, say, api_key: str, now: dt.datetime) -> None:
        """The scoring service sends more reference data, labelled since. Every run compares
        against the reference, so once runs have completed a new batch is staged: it joins only
        through an approved request, like any change of what alerts."""
        client = Client(HTTP_AUTHORIZATION=f"Api-Key {api_key}")
        rows = _scored_rows(now - dt.timedelta(days=15), income_shift=0.0, seed=15, with_outcomes=True)
        request_log = logging.getLogger("django.request")
        level = request_log.level
        request_log.setLevel(logging.ERROR)  # the 409 is the story here, not a warning
        try:
            body = orjson.dumps(rows)
            answer = client.post(f"/api/v1/models/{MODEL}/reference/", body, content_type="application/json")
        finally:
            request_log.setLevel(level)
        if answer.status_code != 409:  # an earlier demo today adopted this very batch
            say(f"   The scoring service's newer reference batch is in the reference already ({answer.status_code}).")
            return
        digest = answer.json()["approval"]["parameters"]["batch"]
        say(
            f"   The scoring service sent {len(rows):,} more reference rows: 409, staged as {digest[:12]}… "
            "(a model with completed runs changes its reference only with approval)."
        )
        request_id, requested = self._alice_requests(
            "reference_change",
            {"batch": digest},
            "Labelled applications of mid-November, from the validated October model.",
        )
        say(f"   {self._sentence(requested)} (seq {requested}).")
        signed = self._approve(request_id, "carol", "Sample checked against the validation report.")
        executed = Remediation.objects.get(request_id=request_id)
        joined = f"{executed.result['rows']:,} rows joined the reference, seq {executed.result['seq']}"
        say(f"   {self._sentence(signed.seq)} (seq {signed.seq}); executed ({executed.state}): {joined}.")

    def _policy(self, say) -> None:
        """Alice proposes judging income by PSI with a floor of 0.20. A change of method is not a
        pure tightening: it takes effect only once two risk approvers have signed it."""
        if policy_load(MODEL).policy["drift"]["features"].get("income") == INCOME_BY_PSI["drift"]["features"]["income"]:
            say(f"3. The policy of {MODEL!r} already judges income by PSI with a floor of 0.20.")
            return
        request_id, requested = self._alice_requests(
            "threshold_change",
            {"policy": INCOME_BY_PSI},
            "Income is the strongest predictor; the credit committee reads PSI, 0.20 is material.",
        )
        say(f"3. {self._sentence(requested)}.")
        for approver, why in (("bob", "PSI is the committee's measure."), ("carol", "Second approval of a policy.")):
            signed = self._approve(request_id, approver, why)
            say(f"   {self._sentence(signed.seq)} (seq {signed.seq}).")
        applied = Event.objects.filter(stream_type="policy", stream_id=MODEL).latest("seq")
        say(f"   {self._sentence(applied.seq)} (seq {applied.seq}).")

    def _monitoring_run(self, say, now: dt.datetime):
        """The product's run on the model's policy over the last two days: its checks, its
        diagnosis and the alerts it raised, as recorded in the log."""
        outcome = run_execute(model=MODEL, start=now - dt.timedelta(days=2), end=now, actor=ALICE)
        recorded = Event.objects.filter(stream_type=RUN_STREAM, stream_id=outcome.run_id).order_by("seq")
        completed = next(e for e in recorded if e.event_type == RunCompleted.type_name)
        diagnosed = next(e for e in recorded if e.event_type == RunDiagnosed.type_name)
        checks = RunCompleted.from_payload(completed.payload).checks
        drift = [c for c in checks if c.check is CheckKind.FEATURE_DRIFT]
        drifted = [c.feature or "" for c in drift if c.status.failing]
        income = next(c for c in drift if c.feature == "income")
        measured = (
            f"income: {income.metric} {income.value:.2f} (floor {income.threshold:.2f}), KS p = {income.p_value:.1e}"
        )
        level = Level.worst(c.status for c in checks)
        say(
            f"4. Monitoring run {outcome.run_id[:8]} (seq {completed.seq}): {len(checks)} checks, level {level}; "
            f"drift in {', '.join(drifted) or 'nothing'} ({measured}). "
            f"Diagnosis: {diagnosed.payload['cause']} ({diagnosed.payload['scope']})."
        )
        alert = Alert.objects.exclude(status=AlertStatus.RESOLVED).get(
            model_name=MODEL, feature="income", check_name=CheckKind.FEATURE_DRIFT
        )
        raised = Event.objects.get(seq=alert.raised_seq)
        if raised.causation_id == completed.event_id:
            say(f"5. {self._sentence(raised.seq)} (seq {raised.seq}).")
        else:  # a later demo: the alert raised by an earlier run is still open
            say(f"5. The income alert raised at seq {raised.seq} is still open: {alert.summary}.")
        return outcome.run_id, completed, alert

    def _passed(self, verification: LogVerification, *, step: int) -> LogVerification:
        """The recorded verification, or the demo stops with the first bad seq."""
        if not verification.ok:
            self.stderr.write(f"{step}. Verification FAILED at seq {verification.failed_seq}: {verification.problem}")
            raise SystemExit(1)
        return verification

    def _alice_requests(self, kind: str, parameters: dict, reason: str) -> tuple[str, int]:
        """Alice files a request citing no event; its id and the seq of its request."""
        request_id = remediation_request(
            model=MODEL, kind=kind, parameters=parameters, evidence=[], actor=ALICE, reason=reason
        )
        return request_id, Remediation.objects.get(request_id=request_id).requested_seq

    def _approve(self, request_id: str, username: str, reason: str) -> Event:
        """The approver re-enters their password and signs; returns the signed event."""
        remediation_decide(
            request_id=request_id,
            decision="approve",
            user=User.objects.get(username=username),
            password=DEMO_PASSWORD,
            reason=reason,
        )
        signed = Event.objects.filter(stream_type=REMEDIATION_STREAM, stream_id=request_id, actor_id=username)
        return signed.latest("seq")

    def _sentence(self, seq: int) -> str:
        """The event's own sentence, with the events of other streams it refers to."""
        envelope = orjson.loads(bytes(Event.objects.get(seq=seq).canonical))

        def stream(kind: str, ident: str) -> list:
            rows = Event.objects.filter(stream_type=kind, stream_id=ident).order_by("seq")
            return [events.parse(t, s, p) for t, s, p in rows.values_list("event_type", "schema", "payload")]

        return events.sentence(envelope, stream).rstrip(".")

    def _evidence(self, say) -> None:
        """Checkpoint, have two witnesses cosign it, export the model's evidence, and verify it
        offline as an auditor would: the log's first key and the witnesses' keys trusted."""
        evidence_dir = Path(settings.DATA_DIR) / "evidence"
        evidence_dir.mkdir(parents=True, exist_ok=True)
        genesis = signing_keys()[0]
        trusted = evidence_dir / f"trusted-{genesis.key_id}.pem"
        trusted.write_bytes(
            public_key_from_raw(genesis.public_raw).public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        log_id = str(LogInfo.objects.get().log_id)
        witnesses = [
            witness_create(Path(settings.DATA_DIR) / "witnesses" / name, name, log_id, trusted)
            for name in ("witness-a", "witness-b")
        ]
        try:
            for witness in witnesses:
                witness.start()
            settings.AUDIT_COSIGNING_WITNESSES = [witness.setting() for witness in witnesses]
            bundle = evidence_dir / f"demo-{MODEL}.zip"
            query = EvidenceQuery(scopes=(("model", MODEL),), include_data=True)
            summary = evidence_export(query=query, out=bundle, created_by=AUDITOR)
        finally:
            for witness in witnesses:
                witness.kill()
        cosigned = Cosignature.objects.filter(checkpoint_id=summary.tree_size).count()
        directory = settings.AUDIT_WITNESSES[0]["options"].get("path", "the configured witnesses")
        say(
            f"13. Signed checkpoint at tree size {summary.tree_size}, published to the witness {directory} and "
            f"cosigned by {cosigned} of 2 witness processes (python -m audit.witness, each with a key of its own, "
            "each checking the checkpoint extends the last one it cosigned)."
        )
        say(f"14. Evidence bundle for {MODEL!r}: {summary.events} events, {summary.data_files} data file(s): {bundle}")
        policy = []
        for witness in witnesses:
            (evidence_dir / f"{witness.name}.pem").write_bytes(witness.public_pem)
            policy += ["--witness-key", str(evidence_dir / f"{witness.name}.pem")]
        offline = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "audit.verifier", str(bundle), "--trusted-key", str(trusted), *policy],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parents[3],
        )
        if offline.returncode != 0:
            self.stderr.write(f"15. Offline verification FAILED: {offline.stderr.strip()}")
            raise SystemExit(1)
        say(
            "15. Offline verifier (python -m audit.verifier, trusting only the log's first key and the two witnesses' "
            f"keys): {offline.stdout.strip()}"
        )


DATA_SCHEMA = {
    "numerical": ["income", "debt_ratio", "age"],
    "categorical": ["region"],
    "id": "application_id",
    "timestamp": "scored_at",
    "prediction": "default_score",
    "target": "defaulted",
    "segments": ["region"],
}


def _scored_rows(
    day: dt.datetime, *, income_shift: float, seed: int, with_outcomes: bool = False, rows: int = 5_000
) -> list[dict]:
    """A day of scored applications; income moves by `income_shift` reference sds. The reference
    carries the observed outcomes, drawn from the scores (a calibrated model). `seed` is the day's
    distance from today, not its date: the demo tells the same figures whatever day it runs."""
    rng = np.random.default_rng(seed * 100 + int(income_shift * 10))
    income = rng.lognormal(10.6 + 0.35 * income_shift, 0.35, rows)
    scores = rng.beta(2, 12, rows)
    outcomes = rng.random(rows) < scores
    start = day.replace(hour=0, minute=0, second=0, microsecond=0)
    return [
        {
            "application_id": f"app-{day:%Y%m%d}-{income_shift}-{i}",
            "scored_at": format_time(start + dt.timedelta(seconds=int(i * 86_400 / rows))),
            "income": round(float(income[i]), 2),
            "debt_ratio": round(float(rng.beta(2, 5)), 4),
            "age": int(rng.integers(21, 75)),
            "region": str(rng.choice(["north", "south", "east", "west"])),
            "default_score": round(float(scores[i]), 4),
            **({"defaulted": int(outcomes[i])} if with_outcomes else {}),
        }
        for i in range(rows)
    ]
