"""The controller's clock, one place: FLEETCARE_NOW (ISO 8601, UTC if no offset) pins it for tests."""
import os
from datetime import UTC, datetime
def now() -> datetime:
    pinned = os.environ.get("FLEETCARE_NOW")
    if pinned:
        t = datetime.fromisoformat(pinned)
        return t if t.tzinfo else t.replace(tzinfo=UTC)
    return datetime.now(UTC)
