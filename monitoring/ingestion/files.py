"""Batch files: Parquet, named by their SHA-256, kept in Django's storage (local disk by
default, any S3-compatible store through STORAGES)."""

from __future__ import annotations

import io
from collections.abc import Collection

import pyarrow as pa
import pyarrow.parquet as pq
from django.core.files.storage import default_storage

from audit.blobs import blob_store, storage_reached

COMPRESSION = "zstd"


def batch_file_write(table: pa.Table, *, unique: Collection[str] = ()) -> tuple[str, bool]:
    """Store the table once in the content-addressed store the evidence export reads
    (blobs/<sha256>); returns (sha256 of the file, whether this call created it). Writing the same
    content again finds the file there and writes nothing. Text columns are dictionary-encoded
    except the `unique` ones (ids): numbers and unique texts gain nothing from a dictionary
    and trying costs three quarters of the write."""
    return blob_store(batch_file_bytes(table, unique=unique))


def batch_file_bytes(table: pa.Table, *, unique: Collection[str] = ()) -> bytes:
    """The batch file's bytes, as `batch_file_write` stores them."""
    buffer = io.BytesIO()
    dictionary = [f.name for f in table.schema if pa.types.is_string(f.type) and f.name not in unique]
    pq.write_table(table, buffer, compression=COMPRESSION, use_dictionary=dictionary)
    return buffer.getvalue()


def batch_file_read(path: str, columns: list[str] | None = None, *, dictionary: Collection[str] = ()) -> pa.Table:
    """The batch's table (`columns`: only those of them it holds, the others not even read);
    `dictionary` columns come back dictionary-encoded, as they are stored (decoding them to plain
    text only to encode them again costs more than reading)."""
    with storage_reached(), default_storage.open(path, "rb") as handle:
        if columns is not None:  # only those the file holds: a column absent from a batch is null there
            held = set(pq.read_schema(handle).names)
            handle.seek(0)
            columns = [name for name in columns if name in held]
        return pq.read_table(handle, columns=columns, read_dictionary=list(dictionary) or None)
