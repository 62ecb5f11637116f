"""Each export is itself an event: who took which evidence, and the bundle's hash."""

from __future__ import annotations

from audit.store import Actor, NewEvent, append


def record_export(export, summary, bundle_sha256: str) -> None:
    user = export.requested_by
    actor = Actor("user", user.get_username(), user.get_full_name() or user.get_username())
    append(
        [
            NewEvent(
                "evidence",
                str(export.id),
                "audit.EvidenceExported",
                {
                    "export_id": str(export.id),
                    "query": export.query,
                    "tree_size": summary.tree_size,
                    "events": summary.events,
                    "bundle_sha256": bundle_sha256,
                },
                actor,
            )
        ],
        expected={("evidence", str(export.id)): 0},
    )
