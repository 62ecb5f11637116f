"""Ed25519 signing keys: load, generate, sign, verify. Pure (no Django)."""

from __future__ import annotations

import base64
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit.envelope import key_id_of


class KeyFileError(ValueError):
    pass


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey
    public_raw: bytes
    key_id: str

    @classmethod
    def from_private(cls, private_key: Ed25519PrivateKey) -> SigningKey:
        public_raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(private_key=private_key, public_raw=public_raw, key_id=key_id_of(public_raw))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls.from_private(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise KeyFileError(f"cannot read Ed25519 private key from {path}: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 private key")
        return cls.from_private(key)

    def sign(self, data: bytes) -> bytes:
        """Ed25519 is deterministic: libsodium gives OpenSSL's signature byte for byte, in about
        two thirds of its time here (every sealed event is signed)."""
        return _sodium_sign(data, self._sodium_secret)[:64]

    @functools.cached_property
    def _sodium_secret(self) -> bytes:
        # Held as Python bytes for the life of this object, as the PEM it was loaded from was
        # while loading: a process that signs holds its key in memory either way. What a rotation
        # destroys is the key's file (audit.keyring.install_signing_key).
        seed = self.private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        return _sodium_keypair(seed)[1]

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_raw).decode("ascii")

    def public_pem(self) -> bytes:
        """The public half as PEM (SubjectPublicKeyInfo): what auditors, witnesses and the anchor hold."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def save(self, path: Path) -> None:
        """Write the PEM atomically, readable by the owner only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(self.private_pem())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)


def public_raw_from_pem(data: bytes) -> bytes:
    """The 32 raw bytes of an Ed25519 public key in PEM; ValueError naming what it is instead."""
    key = serialization.load_pem_public_key(data)  # ValueError when not a PEM public key
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_from_raw(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)


def signature_valid(public_key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


class FastVerifier:
    """Ed25519 verification for bulk checks: libsodium (PyNaCl) verifies about twice as fast
    as OpenSSL here. libsodium is the stricter of the two (it also refuses small-order and
    non-canonical points), so whatever it accepts OpenSSL accepts too."""

    def __init__(self, raw_public_key: bytes) -> None:
        self.raw = raw_public_key

    def valid(self, signature: bytes, data: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            _sodium_open(signature + data, self.raw)
        except _SodiumBadSignature:
            return False
        return True


from nacl.bindings import crypto_sign as _sodium_sign  # noqa: E402
from nacl.bindings import crypto_sign_open as _sodium_open  # noqa: E402
from nacl.bindings import crypto_sign_seed_keypair as _sodium_keypair  # noqa: E402
from nacl.exceptions import BadSignatureError as _SodiumBadSignature  # noqa: E402
