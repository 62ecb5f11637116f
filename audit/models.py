"""Tables of the event store. Rows are only ever inserted, through audit.store.append."""

from django.db import models


class LogInfo(models.Model):
    """The one row naming this log instance (fixed at first append)."""

    log_id = models.UUIDField(primary_key=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "audit_log"


class SigningKeyRecord(models.Model):
    """A public key and the first seq it signs; it is valid until the next key's first seq."""

    key_id = models.CharField(max_length=16, primary_key=True)
    public_key = models.BinaryField()
    valid_from_seq = models.BigIntegerField(unique=True)
    introduced_by_seq = models.BigIntegerField(null=True)  # the audit.KeyRotated event
    created_at = models.DateTimeField()

    class Meta:
        db_table = "audit_signing_key"
        constraints = [
            models.CheckConstraint(condition=models.Q(valid_from_seq__gte=1), name="audit_key_from_positive"),
        ]


class Event(models.Model):
    """One signed envelope. `canonical` is the source of truth; the rest serves queries."""

    seq = models.BigIntegerField(primary_key=True)
    event_id = models.UUIDField()  # unique: audit_event_key holds one row per event id
    stream_type = models.CharField(max_length=100)
    stream_id = models.CharField(max_length=200)
    stream_version = models.IntegerField()
    event_type = models.CharField(max_length=100)
    schema = models.IntegerField()
    occurred_at = models.DateTimeField(db_index=True)
    actor_kind = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=200)
    correlation_id = models.UUIDField(null=True, db_index=True)
    causation_id = models.UUIDField(null=True, db_index=True)
    payload = models.JSONField()
    canonical = models.BinaryField()
    hash = models.BinaryField()
    leaf_hash = models.BinaryField()
    signature = models.BinaryField()
    key_id = models.CharField(max_length=16)

    class Meta:
        db_table = "audit_event"  # partitioned by seq range (migration 0011, audit.partitions)
        indexes = [
            models.Index(fields=["event_id"], name="audit_event_event_id"),
            models.Index(fields=["stream_type", "stream_id", "stream_version"], name="audit_event_stream"),
            # Plain indexes only: the LIKE (varchar_pattern_ops) twins Django adds for db_index
            # served no query, and every index is written by every sealed event (migration 0013).
            models.Index(fields=["event_type"], name="audit_event_type"),
            models.Index(fields=["actor_id"], name="audit_event_actor"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(seq__gte=1), name="audit_event_seq_positive"),
            models.CheckConstraint(condition=models.Q(stream_version__gte=1), name="audit_event_version_positive"),
        ]


class EventKey(models.Model):
    """The log's uniqueness rules, which a partitioned table cannot hold across its partitions: one
    row per event, written by a trigger as the event is inserted (an event id once, a stream
    version once). Append-only, like the log."""

    event_id = models.UUIDField(primary_key=True)
    stream_type = models.CharField(max_length=100)
    stream_id = models.CharField(max_length=200)
    stream_version = models.IntegerField()
    seq = models.BigIntegerField()

    class Meta:
        db_table = "audit_event_key"
        constraints = [
            models.UniqueConstraint(
                fields=["stream_type", "stream_id", "stream_version"], name="audit_event_key_stream_version"
            )
        ]


class LogPartition(models.Model):
    """One partition of the event table: the seqs [first_seq, end_seq) it holds."""

    name = models.TextField(primary_key=True)
    first_seq = models.BigIntegerField()
    end_seq = models.BigIntegerField(unique=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "audit_log_partition"


class LogSegment(models.Model):
    """An archived segment of the log (audit.segment): the projection of audit.SegmentArchived."""

    first_seq = models.BigIntegerField(primary_key=True)
    last_seq = models.BigIntegerField(unique=True)
    partition = models.TextField()
    file_sha256 = models.CharField(max_length=64)
    file_bytes = models.BigIntegerField()
    manifest_sha256 = models.CharField(max_length=64)
    tree_size = models.BigIntegerField()
    archived_seq = models.BigIntegerField()  # the audit.SegmentArchived event
    archived_at = models.DateTimeField()

    class Meta:
        db_table = "audit_log_segment"


class MerkleNode(models.Model):
    """Hash of a completed perfect subtree (level >= 1; level 0 is audit_event.leaf_hash)."""

    pk = models.CompositePrimaryKey("level", "index")
    level = models.SmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField()

    class Meta:
        db_table = "audit_merkle_node"


class Checkpoint(models.Model):
    """A signed tree head: the RFC 9162 root over events 1..tree_size, signed by the log's key."""

    tree_size = models.BigIntegerField(primary_key=True)
    log_id = models.UUIDField()
    root_hash = models.CharField(max_length=64)
    timestamp = models.CharField(max_length=27)
    key_id = models.CharField(max_length=16)
    signature = models.CharField(max_length=100)

    class Meta:
        db_table = "audit_checkpoint"

    def as_dict(self) -> dict:
        """The checkpoint object of the format (docs/evidence-format.md), with its signature."""
        return {
            "log_id": str(self.log_id),
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "timestamp": self.timestamp,
            "key_id": self.key_id,
            "signature": self.signature,
        }


class Cosignature(models.Model):
    """A witness's cosignature of a checkpoint (docs/evidence-format.md, version 2): the witness
    checked that the checkpoint extends the last one it cosigned for this log."""

    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.PROTECT, db_column="tree_size")
    witness_id = models.CharField(max_length=16)
    cosigned_at = models.CharField(max_length=27)
    signature = models.CharField(max_length=100)

    class Meta:
        db_table = "audit_cosignature"
        constraints = [models.UniqueConstraint(fields=["checkpoint", "witness_id"], name="one_cosignature_per_witness")]

    def as_dict(self) -> dict:
        return {"witness_id": self.witness_id, "cosigned_at": self.cosigned_at, "signature": self.signature}


class EvidenceExport(models.Model):
    """A requested evidence bundle and its progress (working state, not part of the log)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True)
    requested_by = models.ForeignKey("auth.User", on_delete=models.PROTECT, related_name="+")
    query = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    events_done = models.IntegerField(default=0)
    events_total = models.IntegerField(default=0)
    missing_data = models.JSONField(default=list)  # referenced data files that were not in storage
    file = models.CharField(max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "audit_evidence_export"
        ordering = ["-created_at"]


class LogVerification(models.Model):
    """One full verification of the log (audit.selfcheck): written when it starts, completed when
    it ends. Working state, not part of the log: a row says what was checked and what was found,
    and /metrics reads the latest finished one."""

    id = models.BigAutoField(primary_key=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True)
    ok = models.BooleanField(null=True)  # None while running (or when the worker died in it)
    events_checked = models.BigIntegerField(default=0)  # the log's size when verified: its tree size
    # 1 for a full verification; for an incremental one, the first seq after the head it started from
    first_seq = models.BigIntegerField(default=1)
    keys_checked = models.IntegerField(default=0)
    checkpoints_checked = models.IntegerField(default=0)  # stored and witnessed ones found consistent (0 unless ok)
    head_hash = models.CharField(max_length=64, blank=True)  # of the last event verified (blank unless ok)
    failed_seq = models.BigIntegerField(null=True)  # the first bad seq; None when ok or when an error ended it
    problem = models.TextField(blank=True)

    class Meta:
        db_table = "audit_log_verification"
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(  # an outcome exactly when it finished
                condition=models.Q(ok=None, finished_at=None) | models.Q(ok__isnull=False, finished_at__isnull=False),
                name="audit_verification_outcome_when_finished",
            ),
        ]
        indexes = [models.Index(fields=["-finished_at"], name="audit_verification_finished")]

    @property
    def seconds(self) -> float | None:
        """How long it took; None while it runs."""
        return (self.finished_at - self.started_at).total_seconds() if self.finished_at else None


class WitnessDelivery(models.Model):
    """The last checkpoint each configured witness received, and the last failure to deliver one
    (working state: the integrity page shows whether every witness keeps up)."""

    name = models.CharField(max_length=300, primary_key=True)  # what it is and where, without secrets
    tree_size = models.BigIntegerField(null=True)  # of the last checkpoint it received
    delivered_at = models.DateTimeField(null=True)
    failed_at = models.DateTimeField(null=True)
    error = models.TextField(blank=True)  # of the last failure, if it came after the last delivery

    class Meta:
        db_table = "audit_witness_delivery"
        ordering = ["name"]


class PendingAppend(models.Model):
    """One append submitted to the sequencer and not yet sealed: durable as soon as its own short
    transaction commits. The sequencer seals it into the log (and deletes it) or refuses it
    (and says why); it is not part of the log and carries no seq, hash or signature."""

    id = models.BigAutoField(primary_key=True)  # the order of arrival, which the sequencer keeps
    batch = models.UUIDField(unique=True)
    # JSON text exactly as its writer wrote and authenticated it (jsonb would rewrite it).
    entries = models.TextField()  # the events, with the event_id each will be sealed under
    expected = models.TextField()  # [[stream_type, stream_id, version or null], ...]
    mac = models.CharField(max_length=64)  # HMAC-SHA256 under a key derived from SECRET_KEY
    submitted_at = models.DateTimeField()
    refused = models.JSONField(null=True)  # {"conflict": {...}} or {"error": "..."}

    class Meta:
        db_table = "audit_pending"


class SequencerLease(models.Model):
    """The one row naming the active sequencer. Every sealing transaction renews it under its
    holder and epoch or seals nothing: a sequencer that lost it, or a second one started by
    mistake, cannot write to the log."""

    id = models.SmallIntegerField(primary_key=True, default=1)
    holder = models.CharField(max_length=200)
    epoch = models.BigIntegerField()
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "audit_sequencer_lease"
