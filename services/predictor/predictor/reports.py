"""The latest model-monitoring report for GET /monitoring: verified with the monitor's key, as any API key may see it
(sommelier_contract.monitoring.public_view), and read again only when monitoring/latest.json names another."""

from __future__ import annotations

from typing import Any

from sommelier_contract.artifacts import Signatures
from sommelier_contract.monitoring import public_view, read_latest, read_report


class LatestReport:
    def __init__(self, s3, bucket: str, signatures: Signatures):
        self._s3, self._bucket, self.signatures = s3, bucket, signatures
        self._key: str | None = None
        self._view: dict[str, Any] | None = None

    def read(self) -> dict[str, Any] | None:
        """The latest report's public view; None when the monitor has written none. A report whose signature does not
        verify raises ArtifactRejected (and is not kept)."""
        latest = read_latest(self._s3, self._bucket, self.signatures)
        if latest is None:
            return None
        if latest["key"] != self._key:
            view = public_view(read_report(self._s3, self._bucket, self.signatures) or {})
            self._key, self._view = view.get("key"), view
        return self._view
