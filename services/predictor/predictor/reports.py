"""GET /monitoring: the calling API key's own model-monitoring report (its predictions only: a report over every key's
inputs could be differenced into another key's values), verified with the monitor's key, and only when it belongs to
the latest monitoring pass (monitoring/latest.json, signed by the monitor, names that pass's time). Each key's view is
kept until a new pass is written."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sommelier_contract import layout
from sommelier_contract.artifacts import Signatures

if TYPE_CHECKING:
    from sommelier_contract.monitoring import Report

NO_REPORT = "no monitoring report yet: the monitor runs on its schedule (hourly by default); `make monitor` runs it now"


class CallerReports:
    def __init__(self, s3, bucket: str, signatures: Signatures):
        self._s3, self._bucket, self.signatures = s3, bucket, signatures
        self._views: dict[str, tuple[str, Report | None]] = {}  # caller -> (the pass's time, its view)

    def read(self, caller: str) -> tuple[Report | None, str]:
        """The caller's view of the latest pass and its verdict in words; (None, why) when there is none for it. A report
        whose signature does not verify, or a pointer that does not, raises ArtifactRejected."""
        # imported at the first call: its 27 dataclasses took ~24 ms of every worker's start (issue 39), for a rare route
        from sommelier_contract.monitoring import ReportMissing, public_view, read_latest, read_report

        latest = read_latest(self._s3, self._bucket, self.signatures)
        if latest is None:
            return None, NO_REPORT
        at = latest.at
        if self._views.get(caller, ("", None))[0] != at:
            key = layout.caller_report_key(caller)
            try:
                report = read_report(self._s3, self._bucket, self.signatures, key)
            except ReportMissing:  # this key has never had a report of its own
                report = None
            if report is not None and (report.key, report.at) != (key, at):
                report = None  # from an earlier pass: this key had no predictions in the latest one's window
            if len(self._views) > 1000:
                self._views.clear()
            self._views[caller] = (at, None if report is None else public_view(report))
        view = self._views[caller][1]
        if view is None:
            return None, (f"the latest monitoring pass ({at}) found no predictions of this API key in its window; it shows each "
                          "key its own predictions only")
        return view, view.message
