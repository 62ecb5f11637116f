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
