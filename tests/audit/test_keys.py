import os

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.keys import SigningKey


@pytest.mark.parametrize("size", [0, 1, 64, 2000, 100_000])
def test_signatures_are_openssls_byte_for_byte_and_verify_under_it(size):
    """The signing path uses libsodium; OpenSSL (cryptography) is the independent reference:
    Ed25519 is deterministic, so both must give the same 64 bytes."""
    private = Ed25519PrivateKey.generate()
    key = SigningKey.from_private(private)
    message = os.urandom(size)
    signature = key.sign(message)
    assert signature == private.sign(message)
    private.public_key().verify(signature, message)  # raises when it does not verify
    with pytest.raises(InvalidSignature):
        private.public_key().verify(signature, message + b"x")


def test_a_loaded_key_signs_as_the_saved_one(tmp_path):
    key = SigningKey.generate()
    key.save(tmp_path / "key.pem")
    loaded = SigningKey.load(tmp_path / "key.pem")
    assert loaded.sign(b"event") == key.sign(b"event") == key.private_key.sign(b"event")
