"""The content-addressed store of data files: each file is kept once, named by its SHA-256
(blobs/<sha256>) in Django's storage (local disk, or any S3-compatible store). Events carry the
digests; evidence bundles with data carry the files."""

from __future__ import annotations

import hashlib

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage


def blob_path(digest: str) -> str:
    return f"blobs/{digest}"


def blob_save(data: bytes) -> str:
    """Store `data` once and return its digest; the same bytes again write nothing."""
    return blob_store(data)[0]


def blob_store(data: bytes) -> tuple[str, bool]:
    """(digest, whether this call created the file)."""
    digest = hashlib.sha256(data).hexdigest()
    path = blob_path(digest)
    if default_storage.exists(path):
        return digest, False
    saved = default_storage.save(path, ContentFile(data))
    if saved != path:  # a concurrent writer stored the same bytes first
        default_storage.delete(saved)
        return digest, False
    return digest, True


def blob_delete(digest: str) -> None:
    """Take back a file this process stored when nothing came to reference it."""
    default_storage.delete(blob_path(digest))


def blob_exists(digest: str) -> bool:
    return default_storage.exists(blob_path(digest))


def blob_read(digest: str) -> bytes:
    with default_storage.open(blob_path(digest), "rb") as handle:
        return handle.read()
