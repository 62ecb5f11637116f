"""The store of data files is named by content: what is read back is those bytes or an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.blobs import BlobCorrupt, blob_path, blob_read, blob_save


def test_a_blob_reads_back_as_saved(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    digest = blob_save(b"the run's result")
    assert blob_read(digest) == b"the run's result"


@pytest.mark.parametrize("changed", [b"another result", b"", b"the run's result\n"])
def test_a_blob_changed_in_storage_is_refused_not_read(settings, tmp_path, changed):
    settings.MEDIA_ROOT = str(tmp_path)
    digest = blob_save(b"the run's result")
    (Path(tmp_path) / blob_path(digest)).write_bytes(changed)
    with pytest.raises(BlobCorrupt, match=f"blobs/{digest} is not the file of that SHA-256"):
        blob_read(digest)
