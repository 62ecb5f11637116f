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
    digest = hashlib.sha256(data).hexdigest()
    path = blob_path(digest)
    if not default_storage.exists(path):
        saved = default_storage.save(path, ContentFile(data))
        if saved != path:  # a concurrent writer stored the same bytes first
            default_storage.delete(saved)
    return digest


def blob_exists(digest: str) -> bool:
    return default_storage.exists(blob_path(digest))


def blob_read(digest: str) -> bytes:
    with default_storage.open(blob_path(digest), "rb") as handle:
        return handle.read()
