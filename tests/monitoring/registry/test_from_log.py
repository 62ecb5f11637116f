"""Decisions that matter rest on the log's signed events, not on the read models alone: a forged
or stale row of the API keys or of the deployment pointer is refused, named, and recorded as an
integrity failure; a serving client checks the pointer it is about to load against the log's key.
Each tamper is done as a database superuser would, with SQL."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from cryptography.hazmat.primitives import serialization
from django.db import connection
from rest_framework_api_key.crypto import KeyGenerator

from audit import keyring
from audit.models import LogVerification
from driftledger.client import PointerRefused, pointer_verify
from monitoring.models import Deployment, ModelApiKey
from monitoring.registry import services as registry
from tests.monitoring.conftest import ALICE, approved, client_for

pytestmark = pytest.mark.django_db
URL = "/api/v1/models/credit/deployment/"


def _sql(statement: str, params: tuple = ()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _integrity_failure() -> str:
    return LogVerification.objects.get(ok=False).problem


def _log_key() -> bytes:
    public = keyring.current_signing_key().private_key.public_key()
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


# ---- reporting keys ----------------------------------------------------------------------------


def test_a_key_works_while_the_log_says_it_was_issued_and_not_revoked(credit_key):
    assert client_for(key=credit_key).get(URL).status_code == 200
    assert not LogVerification.objects.exists()


def test_a_key_row_written_past_the_application_authenticates_nothing(credit_key):
    """The attacker adds a row for a key of their own, naming the issue event of a real key."""
    real = ModelApiKey.objects.get()
    key, prefix, hashed = KeyGenerator().generate()
    table = ModelApiKey._meta.db_table
    _sql(
        f"INSERT INTO {table} (id, prefix, hashed_key, created, name, revoked, expiry_date, model_id, issued_by,"
        " issued_seq) VALUES (%s, %s, %s, now(), 'forged', false, NULL, 'credit', 'alice', %s)",
        (f"{prefix}.{hashed}", prefix, hashed, real.issued_seq),
    )
    answer = client_for(key=key).get(URL)
    assert answer.status_code in (401, 403) and "unknown, revoked or expired" in str(answer.json())
    assert _integrity_failure() == (
        f"a read model differs from the log: {table} row {prefix} (credit): "
        f"the key issued at seq {real.issued_seq} is not this one"
    )


def test_a_revocation_hidden_in_the_read_model_still_revokes(credit_key):
    prefix = ModelApiKey.objects.get().prefix
    registry.api_key_revoke(name="credit", key_id=prefix, actor=ALICE, reason="leaked")
    _sql(f"UPDATE {ModelApiKey._meta.db_table} SET revoked = false")  # the DBA undoes the revocation
    assert client_for(key=credit_key).get(URL).status_code in (401, 403)


def test_a_key_row_naming_an_event_of_another_kind_is_refused(credit_key):
    _sql(f"UPDATE {ModelApiKey._meta.db_table} SET issued_seq = 1")
    assert client_for(key=credit_key).get(URL).status_code in (401, 403)
    assert "seq 1 is a monitoring.ModelRegistered, not a monitoring.ApiKeyIssued" in _integrity_failure()


# ---- the deployment pointer --------------------------------------------------------------------


def test_the_pointer_comes_with_its_signed_event_and_a_client_checks_it(credit_key):
    body = client_for(key=credit_key).get(URL).json()
    assert body["champion"] == "1.0" and body["signed"]["event"]["seq"] == body["seq"]
    envelope = json.loads(base64.b64decode(body["signed"]["event"]["canonical"]))
    assert envelope["type"] == "monitoring.DeploymentChanged" and envelope["payload"]["champion"] == "1.0"
    pointer_verify(body, "credit", [_log_key()])  # passes


def _refused(body: dict, reason: str, model: str = "credit", keys: list[bytes] | None = None) -> None:
    with pytest.raises(PointerRefused, match=reason):
        pointer_verify(body, model, keys if keys is not None else [_log_key()])


def test_a_client_refuses_a_pointer_the_log_did_not_sign(credit_key):
    good = client_for(key=credit_key).get(URL).json()
    changed = copy.deepcopy(good) | {"champion": "6.6"}  # a proxy or a forged answer
    _refused(changed, "the pointer differs from the signed event's")
    forged_event = copy.deepcopy(good)
    envelope = json.loads(base64.b64decode(good["signed"]["event"]["canonical"]))
    envelope["payload"]["champion"] = "6.6"
    forged_event["signed"]["event"]["canonical"] = base64.b64encode(json.dumps(envelope).encode()).decode()
    forged_event["champion"] = "6.6"
    _refused(forged_event, "the event: the signature does not verify")
    _refused(good, "of credit, not the pointer of churn", model="churn")
    stranger = serialization.load_pem_private_key(_stranger_pem(), password=None).public_key()
    stranger_pem = stranger.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _refused(good, "not one of the log's keys given", keys=[stranger_pem])
    wrong_path = copy.deepcopy(good)
    wrong_path["signed"]["proof"]["path"] = ["00" * 32] + wrong_path["signed"]["proof"]["path"]
    _refused(wrong_path, "inclusion proof does not lead to the signed checkpoint")
    unsigned = {key: value for key, value in good.items() if key != "signed"} | {"signed": None}
    _refused(unsigned, "carries no signed event")


def _stranger_pem() -> bytes:
    from audit.keys import SigningKey

    return SigningKey.generate().private_pem()


def test_a_pointer_row_changed_past_the_application_is_not_served(credit_key):
    _sql("UPDATE monitoring_deployment SET champion = '1.1' WHERE model_id = 'credit'")
    answer = client_for(key=credit_key).get(URL)
    assert answer.status_code == 503
    assert "monitoring_deployment row credit: the pointer differs from the one set at seq" in answer.json()["detail"]
    assert "monitoring_deployment row credit" in _integrity_failure()


def test_a_pointer_row_rolled_back_to_an_older_signed_decision_is_not_served(credit_model, credit_key):
    first = Deployment.objects.get().seq
    approved("credit", "promote_challenger", {"version": "1.1"}, reason="better AUC")
    current = Deployment.objects.get()
    assert current.champion == "1.1"
    _sql(  # the row now matches the first signed decision exactly: 1.0 serves again
        "UPDATE monitoring_deployment SET seq = %s, champion = '1.0' WHERE model_id = 'credit'", (first,)
    )
    answer = client_for(key=credit_key).get(URL)
    assert answer.status_code == 503
    assert f"seq {current.seq} changed the pointer after seq {first}" in answer.json()["detail"]


def test_an_event_whose_bytes_were_changed_is_not_served(credit_key):
    seq = Deployment.objects.get().seq
    from tests.owner import as_owner

    as_owner(
        "UPDATE audit_event SET canonical = convert_to(replace(convert_from(canonical, 'UTF8'),"
        ' \'"champion":"1.0"\', \'"champion":"1.1"\'), \'UTF8\') WHERE seq = %s',
        (seq,),
    )
    _sql("UPDATE monitoring_deployment SET champion = '1.1' WHERE model_id = 'credit'")
    answer = client_for(key=credit_key).get(URL)
    assert answer.status_code == 503 and "is not as signed" in answer.json()["detail"]


def test_the_pointer_is_proved_against_a_checkpoint_the_witnesses_cosigned(credit_key, settings, tmp_path):
    from audit import checkpoints
    from audit.cosigning import cosign
    from audit.models import LogInfo
    from audit.witness_local import witness_create

    log_pem = tmp_path / "log.pem"
    log_pem.write_bytes(_log_key())
    log_id = str(LogInfo.objects.get().log_id)
    witnesses = [witness_create(tmp_path / name, name, log_id, log_pem).start() for name in ("w-a", "w-b")]
    try:
        settings.AUDIT_COSIGNING_WITNESSES = [witness.setting() for witness in witnesses]
        cosigned = checkpoints.checkpoint_create(publish=False)
        assert cosign(cosigned) == []
        registry.version_register(name="credit", version="1.2", artifact_uri="s3://models/credit/1.2", actor=ALICE)
        checkpoints.checkpoint_create(publish=False)  # newer, not cosigned (its witnesses have not been asked)
        body = client_for(key=credit_key).get(URL).json()
        checkpoint = body["signed"]["proof"]["checkpoint"]
        assert checkpoint["tree_size"] == cosigned.tree_size and len(checkpoint["cosignatures"]) == 2
        keys = [witness.public_pem for witness in witnesses]
        pointer_verify(body, "credit", [_log_key()], witness_keys=keys)  # passes: both vouch
        uncosigned = copy.deepcopy(body)
        uncosigned["signed"]["proof"]["checkpoint"]["cosignatures"] = []
        with pytest.raises(PointerRefused, match="0 of the 2 witness cosignature"):
            pointer_verify(uncosigned, "credit", [_log_key()], witness_keys=keys)
        one = copy.deepcopy(body)
        one["signed"]["proof"]["checkpoint"]["cosignatures"][0]["signature"] = base64.b64encode(b"x" * 64).decode()
        pointer_verify(one, "credit", [_log_key()], witness_keys=keys, quorum=1)
        with pytest.raises(PointerRefused, match="1 of the 2"):
            pointer_verify(one, "credit", [_log_key()], witness_keys=keys)
    finally:
        for witness in witnesses:
            witness.kill()
