from django.core.management.base import BaseCommand

from audit.checkpoints import CheckpointError, checkpoint_create


class Command(BaseCommand):
    help = "Sign a checkpoint (tree head) over the log as it is now and publish it to the witnesses."

    def handle(self, *args, **options):
        try:
            checkpoint = checkpoint_create()
        except CheckpointError as exc:
            self.stderr.write(str(exc))
            raise SystemExit(1) from exc
        if checkpoint is None:
            self.stdout.write("The log is empty: nothing to checkpoint.")
            return
        self.stdout.write(
            f"Checkpoint: tree size {checkpoint.tree_size}, root {checkpoint.root_hash}, "
            f"signed by {checkpoint.key_id} at {checkpoint.timestamp}"
        )
