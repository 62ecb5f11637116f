"""Where data files and evidence exports live: the options of django-storages' S3 backend, for
any S3-compatible store (settings read the environment; the tests build the same options)."""

from __future__ import annotations

import botocore.config


def s3_storage(*, bucket: str, endpoint_url: str | None, region: str | None, prefix: str = "") -> dict:
    """A STORAGES entry for the bucket. Files are content-addressed (a name that exists holds the
    same bytes), so nothing is overwritten; the store must fail fast when it is down, so that a
    request answers 503 and a task retries instead of hanging on botocore's 60 s timeouts."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url or None,
            "region_name": region or None,
            "location": prefix,
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
            "max_memory_size": 64 * 1024 * 1024,  # a larger file read back spills to a temporary file
            "client_config": botocore.config.Config(
                connect_timeout=5, read_timeout=20, retries={"max_attempts": 3, "mode": "standard"}
            ),
        },
    }
