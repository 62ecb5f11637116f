"""What a hostile or careless caller finds: nothing stored for a refused request. `stored()` is
everything a request could leave behind: every file under the media root, every event, every
batch row."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from audit.models import Event
from monitoring.models import Batch


def stored() -> tuple[list[str], int, int]:
    root = Path(settings.MEDIA_ROOT)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []
    return files, Event.objects.count(), Batch.objects.count()
