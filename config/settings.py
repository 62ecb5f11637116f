"""Driftledger settings: everything the environment decides is read here, and only here."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import environ

from config.storage import s3_storage

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env(
    DEBUG=(bool, False),
    CELERY_BROKER_URL=(str, ""),
    AUDIT_SIGNING_KEY_FILE=(str, ""),
)

DEBUG = env("DEBUG")
DATA_DIR = Path(env("DRIFTLEDGER_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()
# The default serves the demo and tests only; every deployment sets SECRET_KEY.
SECRET_KEY = env("SECRET_KEY", default="driftledger-development-only-secret-key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "rest_framework_api_key",
    "axes",
    "django_htmx",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "audit",
    "monitoring",
    "web",
]

MIDDLEWARE = [
    "monitoring.http.body_limit",  # first: an oversized body is refused before anything reads it
    "monitoring.http.nul_refused",  # PostgreSQL holds no NUL: 400, not the database's error
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files (Swagger UI, admin) from the app itself
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): the session passed a second factor
    "web.access.second_factor_middleware",  # a session that now needs a second factor it has not shown
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: it answers for locked-out credentials
]

# The web pages: no inline script or style, nothing from another origin (every asset is vendored
# and served by the app). A page that breaks this is a bug the browser tests report.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
LOGIN_URL = "/signin/"
LOGIN_REDIRECT_URL = "/"
SESSION_COOKIE_AGE = env.int("SESSION_SECONDS", default=8 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Behind TLS (every deployment but the demo on localhost) cookies travel over HTTPS only.
SECURE_COOKIES = env.bool("SECURE_COOKIES", default=env.bool("DRIFTLEDGER_PRODUCTION", default=False))
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_COOKIES
# A second factor (TOTP) is required of these roles whatever the sign-in policy an administrator
# sets in the app says; the policy may require it of more roles, never of fewer.
OTP_REQUIRED_ROLES = env.list("OTP_REQUIRED_ROLES", default=[])
OTP_TOTP_ISSUER = env("OTP_ISSUER", default="Driftledger")
SECOND_FACTOR_MAX_TRIES = 5  # wrong codes in one sign-in before it starts over (each counts as a failed login)

# Brute force on passwords (monitoring/access/lockout.py): django-axes records every failed
# login; LOGIN_FAILURE_LIMIT failures of one username from one address lock that pair out, and
# LOGIN_ADDRESS_FAILURE_LIMIT failures from one address across usernames throttle the address,
# for LOGIN_COOLOFF_HOURS. Refusals answer 429 with Retry-After; every failure is logged with
# the username tried and the address, never the password.
AUTHENTICATION_BACKENDS = ["monitoring.access.authentication.LoginBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=20)
AXES_COOLOFF_TIME = env.float("LOGIN_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # a refused attempt does not extend the wait it was told
AXES_LOCKOUT_CALLABLE = "web.signin.lockout_response"  # a page for the web, JSON for the API
AXES_USERNAME_CALLABLE = "monitoring.access.authentication.axes_username"
# Scripts trade a password for a short-lived token (POST /api/v1/auth/token/) instead of paying a
# password hash on every call.
API_TOKEN_SECONDS = env.int("API_TOKEN_SECONDS", default=3600)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "web.access.navigation",
            ]
        },
    }
]

if env("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
    # A Unix socket directory may be given percent-encoded as the host: postgres://u@%2Frun%2Fpg/db
    DATABASES["default"]["HOST"] = unquote(DATABASES["default"].get("HOST") or "")
elif env.bool("DRIFTLEDGER_PRODUCTION", default=False):
    # Refused below, without starting an embedded server first: production names its own.
    DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql"}}
else:
    from config.embedded_db import embedded_database

    DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", **embedded_database(DATA_DIR)}}
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
# Behind PgBouncer (or another pooler) in transaction mode, a server connection serves one
# transaction at a time: no server-side cursors and no prepared statements outlive it. The log
# orders appends with transaction-level advisory locks, which work there.
DATABASE_TRANSACTION_POOLING = env.bool("DATABASE_TRANSACTION_POOLING", default=False)
if DATABASE_TRANSACTION_POOLING:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None
else:
    # The log's hot statements ask to be prepared (prepare=True: parsed and planned once per
    # connection); the ORM's never reach this many executions of one text. Django's default
    # (None) would ignore even an explicit prepare.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 2**31 - 1)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(DATA_DIR / "static")))  # an image collects them at build
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True  # served from the installed apps too, before any collectstatic
# Data files (prediction batches, run results) and evidence exports live in Django storage: the
# data dir by default, any S3-compatible store when STORAGE_S3_BUCKET is set (credentials from
# boto3's usual sources: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, an instance role).
MEDIA_ROOT = DATA_DIR / "media"
STORAGE_S3_BUCKET = env("STORAGE_S3_BUCKET", default="")
STORAGES = {
    "default": (
        s3_storage(
            bucket=STORAGE_S3_BUCKET,
            endpoint_url=env("STORAGE_S3_ENDPOINT_URL", default=""),
            region=env("STORAGE_S3_REGION", default=""),
            prefix=env("STORAGE_S3_PREFIX", default=""),
        )
        if STORAGE_S3_BUCKET
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

REST_FRAMEWORK = {
    # The first one names the challenge of a 401 (WWW-Authenticate: Basic).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "monitoring.access.authentication.PasswordAuthentication",
        "monitoring.access.authentication.TokenAuthentication",
        "monitoring.access.authentication.ModelKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # DRF's three, its JSON parser refusing a body nested too deeply or holding a lone surrogate.
    "DEFAULT_PARSER_CLASSES": [
        "monitoring.json_parser.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "monitoring.http.exception_handler",
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": env("API_ANON_RATE", default="600/minute")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Driftledger API",
    "DESCRIPTION": "Monitoring and tamper-evident audit for deployed ML models.",
    "VERSION": "1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    # Closed sets that share a field name get their own schema names.
    "ENUM_NAME_OVERRIDES": {
        "BatchKindEnum": "monitoring.ingestion.domain.BatchKind.choices",
        "RemediationKindEnum": "monitoring.remediation.kinds.RemediationKind.choices",
        "RemediationStateEnum": "monitoring.remediation.domain.RemediationState.choices",
        "AlertStatusEnum": "monitoring.alerting.domain.AlertStatus.choices",
        "RunStatusEnum": "monitoring.runs.domain.RunStatus.choices",
        "LevelEnum": "monitoring.runs.domain.Level.choices",
        "RoleEnum": "monitoring.access.domain.Role.choices",
        "TaskEnum": "monitoring.registry.data_schema.Task.choices",
        "DeploymentActionEnum": "monitoring.registry.domain.DeploymentAction.choices",
        "ResolutionEnum": "monitoring.alerting.domain.Resolution.choices",
        "AlertmanagerStatusEnum": "monitoring.alerting.api.ALERTMANAGER_STATUSES",
    },
}

# Who carries out an approved deployment change, in order (monitoring/remediation/executors.py).
DEPLOYMENT_EXECUTORS = env.list("DEPLOYMENT_EXECUTORS", default=["monitoring.remediation.executors.RegistryExecutor"])
MLFLOW_TRACKING_URI = env("MLFLOW_TRACKING_URI", default=None)

# Notifiers a policy may name ("notify": [...]); secrets stay here, never in the log. E.g.
# NOTIFIERS_JSON='{"ops": {"class": "monitoring.alerting.notifiers.WebhookNotifier", "url": "...", "secret": "..."}}'
NOTIFIERS = env.json("NOTIFIERS_JSON", default={})
# Alertmanager posts to /api/v1/alertmanager/ with this bearer token (unset: the receiver is off).
ALERTMANAGER_TOKEN = env("ALERTMANAGER_TOKEN", default="")

# A person may hold an alert's notifications this long; longer is accepting a risk, which takes
# an approved accept_risk remediation request.
ALERT_SILENCE_MAX_HOURS = env.float("ALERT_SILENCE_MAX_HOURS", default=24.0)

# /metrics names models and features: it answers only with `Authorization: Bearer
# <METRICS_TOKEN>` when that is set, and to anyone only when METRICS_PUBLIC is true.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_PUBLIC = env.bool("METRICS_PUBLIC", default=False)

# Remediation: approvals each kind needs (four eyes: never the requester), how long an
# undecided request lives, and how soon a break-glass rollback must be reviewed.
REMEDIATION_APPROVALS = {
    "rollback": 1,
    "promote_challenger": 1,
    "canary_start": 1,
    "canary_stop": 1,
    "retrain": 1,
    "threshold_change": 2,
    "accept_risk": 1,
    "set_challenger": 1,
    "retire_version": 1,
    "retire_model": 2,
    "schema_change": 2,
    "reference_change": 1,
} | env.json("REMEDIATION_APPROVALS_JSON", default={})
REMEDIATION_EXPIRY_HOURS = env.int("REMEDIATION_EXPIRY_HOURS", default=72)
REMEDIATION_REVIEW_MINUTES = env.int("REMEDIATION_REVIEW_MINUTES", default=240)
REMEDIATION_RETRY_HOURS = env.int("REMEDIATION_RETRY_HOURS", default=24)
# A retrain executing this long without its pipeline's report is failed (its trigger or pipeline was lost).
REMEDIATION_REPORT_HOURS = env.int("REMEDIATION_REPORT_HOURS", default=72)
# An approval holds REMEDIATION_RETRY_HOURS for its first execution too: 0 would lapse every one unexecuted.
for _name in ("REMEDIATION_EXPIRY_HOURS", "REMEDIATION_RETRY_HOURS", "REMEDIATION_REPORT_HOURS"):
    if globals()[_name] < 1:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"{_name} must be 1 hour or more, not {globals()[_name]}")
PIPELINE_WEBHOOK_URL = env("PIPELINE_WEBHOOK_URL", default="")
PIPELINE_WEBHOOK_SECRET = env("PIPELINE_WEBHOOK_SECRET", default="")

# Ingestion limits, enforced at the door (docs/ingestion.md): a request over one is refused whole
# (413 for sizes, 400 for values) and stores nothing.
INGEST_MAX_BODY_BYTES = env.int("INGEST_MAX_BODY_BYTES", default=64 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = INGEST_MAX_BODY_BYTES
INGEST_MAX_ROWS = env.int("INGEST_MAX_ROWS", default=1_000_000)
INGEST_MAX_COLUMNS = env.int("INGEST_MAX_COLUMNS", default=500)
INGEST_MAX_TEXT_LENGTH = env.int("INGEST_MAX_TEXT_LENGTH", default=1_000)
INGEST_MAX_CATEGORIES = env.int("INGEST_MAX_CATEGORIES", default=10_000)
# Times before this are not plausible (a model's data schema may set its own "earliest"); times
# may run ahead of the server's clock by INGEST_CLOCK_SKEW_SECONDS.
INGEST_EARLIEST_TIME = env("INGEST_EARLIEST_TIME", default="2000-01-01T00:00:00Z")
INGEST_CLOCK_SKEW_SECONDS = env.int("INGEST_CLOCK_SKEW_SECONDS", default=300)

# Celery. Tasks never run inside a web request: with no broker configured, messages go to a
# broker in files under DATA_DIR/broker, consumed by the local worker `manage.py serve` starts
# (one machine). Production sets CELERY_BROKER_URL (Redis or RabbitMQ).
_broker = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_URL = _broker or "filesystem://localhost//"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A message taken by a worker that dies is delivered again after this many seconds (Redis);
# keep it above the longest task's time limit.
# Workers sweep for such messages every interval × throttle seconds (Redis transport).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900),
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": env.int("CELERY_UNACKED_RESTORE_THROTTLE", default=6),
}
if not _broker:
    BROKER_DIR = DATA_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
    }
    for _folder in ("queue", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
# The whole log is verified again this often (audit/selfcheck.py); the outcome is recorded, shown
# on the Integrity page and exported to /metrics, and a failure calls these handlers.
AUDIT_VERIFY_EVERY_HOURS = env.float("AUDIT_VERIFY_EVERY_HOURS", default=6)
# Between full verifications, the events appended since the last good head are verified this often.
AUDIT_VERIFY_NEW_EVERY_MINUTES = env.float("AUDIT_VERIFY_NEW_EVERY_MINUTES", default=10)
# A checkpoint (signed, then cosigned by the witnesses) after every this many events, from a worker,
# and at least this often from beat when the log grew: whichever comes first.
AUDIT_CHECKPOINT_EVERY_EVENTS = env.int("AUDIT_CHECKPOINT_EVERY_EVENTS", default=1000)
AUDIT_CHECKPOINT_EVERY_SECONDS = env.float("AUDIT_CHECKPOINT_EVERY_SECONDS", default=60.0)
# Every read model is replayed from the log into a scratch schema and compared this often.
AUDIT_READ_MODEL_CHECK_EVERY_MINUTES = env.float("AUDIT_READ_MODEL_CHECK_EVERY_MINUTES", default=60)
AUDIT_VERIFY_FAILURE_HANDLERS = ["monitoring.alerting.selfcheck.notify_log_verification_failed"]
CELERY_BEAT_SCHEDULE = {
    "audit-checkpoint": {"task": "audit.tasks.checkpoint_if_grown", "schedule": AUDIT_CHECKPOINT_EVERY_SECONDS},
    "audit-read-models": {
        "task": "audit.tasks.check_read_models",
        "schedule": AUDIT_READ_MODEL_CHECK_EVERY_MINUTES * 60,
    },
    "monitoring-schedule": {"task": "monitoring.runs.tasks.schedule_due_runs", "schedule": 60.0},
    "monitoring-notifications": {"task": "monitoring.alerting.tasks.deliver_notifications", "schedule": 60.0},
    "monitoring-escalation": {"task": "monitoring.alerting.tasks.escalate_alerts", "schedule": 60.0},
    "remediation-deadlines": {"task": "monitoring.remediation.tasks.remediation_deadlines", "schedule": 60.0},
    "monitoring-stalled-runs": {"task": "monitoring.runs.tasks.fail_stalled_runs", "schedule": 60.0},
    "monitoring-heartbeats": {"task": "monitoring.alerting.tasks.check_heartbeats", "schedule": 60.0},
    "audit-verify": {"task": "audit.tasks.verify_log", "schedule": AUDIT_VERIFY_EVERY_HOURS * 3600},
    "audit-verify-new": {"task": "audit.tasks.verify_new_events", "schedule": AUDIT_VERIFY_NEW_EVERY_MINUTES * 60},
}

# Every run has a time and a memory budget. Over time: RunFailed (soft limit), or the worker
# process is killed 30 s later and the sweeper fails the run once RUN_STALLED_AFTER_SECONDS
# have passed since it started (a broker that redelivers may have finished it by then).
# Over memory: refused before loading when the estimate exceeds the budget; worker processes
# may not grow past it plus RUN_MEMORY_HEADROOM_MB (MemoryError).
RUN_TIME_LIMIT_SECONDS = env.int("RUN_TIME_LIMIT_SECONDS", default=600)
_redelivered_after = CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] + (
    CELERY_BROKER_TRANSPORT_OPTIONS["unacked_restore_interval"]
    * CELERY_BROKER_TRANSPORT_OPTIONS["unacked_restore_throttle"]
)
RUN_STALLED_AFTER_SECONDS = env.int(  # a run redelivered (Redis) may still be computing until then
    "RUN_STALLED_AFTER_SECONDS", default=_redelivered_after + RUN_TIME_LIMIT_SECONDS + 30 + 300
)
RUN_MEMORY_BUDGET_MB = env.int("RUN_MEMORY_BUDGET_MB", default=4096)
# A run whose window and reference hold at least RUN_FANOUT_ROWS rows is split by feature groups of
# RUN_FANOUT_FEATURES over the workers (docs/architecture.md, "Runs fanned out over workers"); each
# part holds its features' columns only, so a window too large for one process still runs.
RUN_FANOUT_ROWS = env.int("RUN_FANOUT_ROWS", default=4_000_000)
RUN_FANOUT_FEATURES = env.int("RUN_FANOUT_FEATURES", default=4)
# Every task has a hard limit (runs have their own): a worker never hangs on one forever. Celery's
# prefork pool enforces per-task limits only when a worker-wide one is set.
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=900)
RUN_MEMORY_HEADROOM_MB = env.int("RUN_MEMORY_HEADROOM_MB", default=1024)

# The audit log's Ed25519 key. Unset: a development key is generated under DATA_DIR on first use.
AUDIT_SIGNING_KEY_FILE = Path(env("AUDIT_SIGNING_KEY_FILE")) if env("AUDIT_SIGNING_KEY_FILE") else None
AUDIT_DEV_KEY_FILE = DATA_DIR / "keys" / "audit-signing-key.pem"
# Where a private key retired by a rotation goes (offline media); unset, it is destroyed.
AUDIT_RETIRED_KEY_DIR = env("AUDIT_RETIRED_KEY_DIR", default="")
# The log's first public key, pinned outside the database (docs/evidence.md, "Trust model").
# Provision it read-only for the application; on one machine the log pins its first key here.
AUDIT_TRUST_ANCHOR = Path(env("AUDIT_TRUST_ANCHOR", default=str(DATA_DIR / "trust-anchor.pem")))

# The sequencer write path (audit/sequencer.py): appends are submitted in their own short
# transactions and sealed in batches by the one elected `manage.py run_sequencer`. Off, every
# append seals itself under the log's lock (simplest for one user, the demo's default).
AUDIT_SEQUENCER = env.bool("AUDIT_SEQUENCER", default=False)
# A submission not sealed within this many seconds is sealed by its writer (sequencer down).
AUDIT_SEQUENCER_WAIT_SECONDS = env.float("AUDIT_SEQUENCER_WAIT_SECONDS", default=5)
AUDIT_SEQUENCER_BATCH = env.int("AUDIT_SEQUENCER_BATCH", default=2000)  # submissions sealed per transaction
AUDIT_SEQUENCER_LEASE_SECONDS = env.float("AUDIT_SEQUENCER_LEASE_SECONDS", default=5)
# The event table is partitioned by seq range; each new partition holds this many seqs.
AUDIT_PARTITION_EVENTS = env.int("AUDIT_PARTITION_EVENTS", default=10_000_000)
if not 2 <= AUDIT_PARTITION_EVENTS <= 1_000_000_000:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"AUDIT_PARTITION_EVENTS must be 2 to 1,000,000,000, not {AUDIT_PARTITION_EVENTS:,}")

# Where every checkpoint is also published (see audit/witnesses.py). The default directory serves
# the demo; production points AUDIT_WITNESS_DIR at storage another host holds, and/or sets a URL.
# Who may export evidence (audit's API names no role; the roles are the domain's).
AUDIT_EVIDENCE_PERMISSIONS = ["monitoring.access.permissions.CanExportEvidence"]
AUDIT_LOG_PERMISSIONS = ["monitoring.access.permissions.CanReadLog"]
AUDIT_EVIDENCE_ALL_PERMISSIONS = ["monitoring.access.permissions.CanAdminister"]  # see everyone's exports

AUDIT_WITNESSES = [
    {
        "class": "audit.witnesses.DirectoryWitness",
        "options": {"path": env("AUDIT_WITNESS_DIR", default=str(DATA_DIR / "witness"))},
    }
]
if env("AUDIT_WITNESS_URL", default=""):
    AUDIT_WITNESSES.append({"class": "audit.witnesses.HttpWitness", "options": {"url": env("AUDIT_WITNESS_URL")}})
# Cosigning witnesses (python -m audit.witness): each checkpoint is sent to every one, and evidence
# bundles carry their cosignatures. A JSON list of {"name", "url", "public_key" (PEM or base64 raw)}.
AUDIT_COSIGNING_WITNESSES = env.json("AUDIT_COSIGNING_WITNESSES_JSON", default=[])
AUDIT_COSIGN_TIMEOUT = env.float("AUDIT_COSIGN_TIMEOUT", default=5.0)  # seconds per witness request
# How many of them make a checkpoint "cosigned" for freshness (/metrics, the Integrity page); 0: all.
AUDIT_WITNESS_QUORUM = env.int("AUDIT_WITNESS_QUORUM", default=0)
# The Integrity page flags the newest cosigned checkpoint as stale past this age (the alert rule's bound).
AUDIT_COSIGNED_STALE_SECONDS = env.float("AUDIT_COSIGNED_STALE_SECONDS", default=900.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    # Authentication failures and refused requests (monitoring.http, django-axes).
    "loggers": {
        "driftledger.security": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "axes": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}

# Production mode refuses to start with the development defaults (config/production.py).
DRIFTLEDGER_PRODUCTION = env.bool("DRIFTLEDGER_PRODUCTION", default=False)
if DRIFTLEDGER_PRODUCTION:
    from django.core.exceptions import ImproperlyConfigured

    from config.production import production_problems

    _problems = production_problems(
        debug=DEBUG,
        secret_key=SECRET_KEY,
        signing_key_file=AUDIT_SIGNING_KEY_FILE,
        data_dir=DATA_DIR,
        metrics_public=METRICS_PUBLIC,
        metrics_token=METRICS_TOKEN,
        database_url=env("DATABASE_URL", default=""),
        broker_url=_broker,
        secure_cookies=SECURE_COOKIES,
    )
    if _problems:
        raise ImproperlyConfigured("DRIFTLEDGER_PRODUCTION is set, but: " + "; ".join(_problems))
