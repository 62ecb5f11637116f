"""Event types the store itself emits."""

from audit import registry

KEY_ROTATED = registry.register(
    "audit.KeyRotated",
    schema=1,
    required={
        "new_key_id": str,
        "new_public_key": str,
        "previous_key_id": str,
        "new_key_signature": str,
    },
    description="A new signing key takes over after this event; signed by the previous key.",
)

EVIDENCE_EXPORTED = registry.register(
    "audit.EvidenceExported",
    schema=1,
    required={"export_id": str, "query": dict, "tree_size": int, "events": int, "bundle_sha256": str},
    description="Someone exported an evidence bundle; the bundle's hash makes the copy identifiable.",
)
