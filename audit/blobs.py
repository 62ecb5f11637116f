"""The content-addressed store of data files: each file is kept once, named by its SHA-256
(blobs/<sha256>) in Django's storage (local disk, or any S3-compatible store). Events carry the
digests; evidence bundles with data carry the files. Evidence exports are kept there too."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachable
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from s3transfer.exceptions import RetriesExceededError


class StorageUnavailable(Exception):
    """The object store could not be reached, or answered with a server error: nothing was
    stored; a request answers 503 (try again), a task retries."""


@contextmanager
def storage_reached() -> Iterator[None]:
    """Turns the S3 backend's connection failures and 5xx answers into StorageUnavailable. A
    missing file or a refused credential stays what it is: trying again would not help."""
    try:
        yield
    except (EndpointUnreachable, HTTPClientError, RetriesExceededError) as exc:
        raise StorageUnavailable(f"the object store is unreachable: {exc}") from exc
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
            raise StorageUnavailable(f"the object store failed: {exc}") from exc
        raise


def blob_path(digest: str) -> str:
    return f"blobs/{digest}"


def blob_save(data: bytes) -> str:
    """Store `data` once and return its digest; the same bytes again write nothing."""
    return blob_store(data)[0]


def blob_store(data: bytes) -> tuple[str, bool]:
    """(digest, whether this call created the file)."""
    digest = hashlib.sha256(data).hexdigest()
    path = blob_path(digest)
    with storage_reached():
        if default_storage.exists(path):
            return digest, False
        saved = default_storage.save(path, ContentFile(data))
        if saved != path:  # a concurrent writer stored the same bytes first
            default_storage.delete(saved)
            return digest, False
    return digest, True


def blob_store_file(handle: IO[bytes], digest: str) -> bool:
    """Store an open file, whose SHA-256 the caller has computed, once under blobs/<digest>,
    streamed (a segment of the log can be gigabytes); whether this call created it."""
    path = blob_path(digest)
    with storage_reached():
        if default_storage.exists(path):
            return False
        saved = default_storage.save(path, File(handle, name=path))
        if saved != path:  # a concurrent writer stored the same bytes first
            default_storage.delete(saved)
            return False
    return True


def blob_delete(digest: str) -> None:
    """Take back a file this process stored when nothing came to reference it."""
    with storage_reached():
        default_storage.delete(blob_path(digest))


def blob_exists(digest: str) -> bool:
    with storage_reached():
        return default_storage.exists(blob_path(digest))


class BlobCorrupt(Exception):
    """A stored file is not the bytes its name says: storage is not the log, and a file changed
    there (or damaged) must not be taken for the one an event names by its SHA-256."""


def blob_read(digest: str) -> bytes:
    """The file named `digest`, checked to be those bytes (BlobCorrupt otherwise)."""
    with storage_reached(), default_storage.open(blob_path(digest), "rb") as handle:
        data = handle.read()
    if hashlib.sha256(data).hexdigest() != digest:
        raise BlobCorrupt(f"the stored file blobs/{digest} is not the file of that SHA-256: it was changed or damaged")
    return data


def stored_open(name: str) -> IO[bytes]:
    """A stored file by its name in storage, open for reading. An object store's file is fetched
    here (spilling to a temporary file past 64 MiB), so that an outage is raised now and
    not halfway through the response."""
    with storage_reached():
        handle = default_storage.open(name, "rb")
        handle.file  # noqa: B018 - S3File downloads on first access
        return handle


def export_path(export_id: str) -> str:
    return f"evidence/{export_id}.zip"


def export_save(export_id: str, bundle: Path) -> None:
    """Put a finished evidence bundle in storage under export_path (replacing an earlier try's)."""
    name = export_path(export_id)
    with storage_reached():
        default_storage.delete(name)
        with bundle.open("rb") as handle:
            saved = default_storage.save(name, File(handle, name=name))
    if saved != name:  # another worker stored the same export meanwhile: keep one
        default_storage.delete(saved)
