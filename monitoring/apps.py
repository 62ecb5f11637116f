from django.apps import AppConfig

# The streams of one model for evidence exports: its own stream and every stream whose events
# name it in their payload (runs, alerts, policies, remediations, data).
MODEL_STREAMS_SQL = """
SELECT DISTINCT stream_type, stream_id FROM audit_event
 WHERE seq <= %(size)s AND ((stream_type = 'model' AND stream_id = %(value)s) OR payload->>'model' = %(value)s)
"""


class MonitoringConfig(AppConfig):
    name = "monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from audit import evidence
        from monitoring.access.settings_check import check_second_factor_floor
        from monitoring.remediation.settings_check import check_quorums

        checks.register(check_quorums)
        checks.register(check_second_factor_floor)

        # Each concept registers its event types, projections and subscribers on import.
        from monitoring.access import passwords as _passwords  # noqa: F401
        from monitoring.access import projections as _people  # noqa: F401
        from monitoring.access import second_factor as _second_factor  # noqa: F401
        from monitoring.alerting import projections as _alerts  # noqa: F401
        from monitoring.ingestion import projections as _batches  # noqa: F401
        from monitoring.policies import domain as _policies  # noqa: F401
        from monitoring.registry import projections as _registry  # noqa: F401
        from monitoring.remediation import projections as _remediations  # noqa: F401
        from monitoring.runs import projections as _runs  # noqa: F401

        evidence.scope_register(
            "model", MODEL_STREAMS_SQL, help="every event of this model's streams and their causes and effects"
        )
