"""One training run, as four stages with one job each: data (the dataset, its feedback, the frozen evaluation rows)
-> compare (candidates by cross-validation, the winner refit) -> evaluate (holdout scores, the champion's on the same
rows, importances, the gate) -> publish (artifacts, the signed manifest, the pointer, the run's metrics).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from sommelier_contract import pointers
from sommelier_contract.artifacts import ArtifactRejected, load_verified, read_manifest
from sommelier_contract.dataset import DataError
from sommelier_contract.manifest import Metrics
from trainer import artifacts, compare, data, evaluate, publish
from trainer.config import Settings

log = logging.getLogger("trainer")


@dataclass
class Outcome:
    version: str | None
    promoted: bool
    reason: str
    metrics: Metrics | None = None
    quarantined: list[dict[str, str]] = field(default_factory=list)
    model: str | None = None
    unchecked: str | None = None  # what could not be done or checked after the version was written


def run(settings: Settings, s3, cloudwatch=None, *, only_if_no_champion: bool = False, promote: bool = True,
        trigger: str = "cli", follow_champion: bool = False) -> Outcome:
    champion = pointers.read_champion(s3, settings.model_bucket)
    signed = artifacts.signatures(settings)  # verifies the champion, signs the new manifest
    if only_if_no_champion and champion:
        try:  # a champion that cannot be served (unsigned, tampered, another scikit-learn) is as good as none
            load_verified(s3, settings.model_bucket, champion.version, signed)
            log.info("champion %s exists; nothing to train", champion.version)
            return Outcome(version=champion.version, promoted=False, reason="champion exists")
        except ArtifactRejected as err:
            log.warning("champion %s cannot be served (%s); training one that can", champion.version, err)
    settings = dataset_settings(settings, s3, trigger, follow_champion, champion)
    started, now = time.perf_counter(), datetime.now(UTC)
    dataset = settings.dataset_prefix.strip("/").rsplit("/", 1)[-1]
    try:
        prepared = data.prepare(settings, s3, now)
        winner = compare.choose(settings, prepared)
        verdict = evaluate.assess(settings, s3, prepared, winner, champion, signed)
        manifest, promoted = publish.publish(
            settings, s3, prepared, winner, verdict, champion, now=now, trigger=trigger, promote=promote, signed=signed,
            timings={"fit_seconds": winner.fit_seconds, "total_seconds": time.perf_counter() - started})
    except DataError as err:
        log.error("training failed: %s", err)
        if cloudwatch is not None:
            publish.report(cloudwatch, settings, dataset, None, False, 0, time.perf_counter() - started)
        raise
    unchecked = None  # the version is written and the pointer moved: metrics that cannot be sent are said, not the run's failure
    if cloudwatch is not None and not publish.report(cloudwatch, settings, dataset, manifest, promoted,
                                                     len(prepared.feedback.quarantined), time.perf_counter() - started):
        unchecked = "the run's metrics could not be sent to CloudWatch (the log says why)"
    return Outcome(version=manifest.version, promoted=promoted, reason=manifest.gate.reason or "", metrics=manifest.metrics,
                   quarantined=prepared.feedback.quarantined, model=winner.name, unchecked=unchecked)


def dataset_settings(settings: Settings, s3, trigger: str, follow_champion: bool = False,
                     champion: pointers.Champion | None = None) -> Settings:
    """The settings for the dataset a run trains: a scheduled run (or one told to follow the champion) retrains the
    champion's own dataset, whatever it is; any other run the one it was given."""
    if trigger != "schedule" and not follow_champion:
        return settings
    champion = champion or pointers.read_champion(s3, settings.model_bucket)
    return _on_champions_dataset(settings, s3, champion) if champion else settings


def _on_champions_dataset(settings: Settings, s3, champion: pointers.Champion) -> Settings:
    """The settings for retraining the champion's own dataset (a scheduled run keeps it fresh, whatever it is)."""
    try:
        prefix = read_manifest(s3, settings.model_bucket, champion.version).dataset.prefix
    except (ClientError, ArtifactRejected):
        prefix = None
    if prefix and prefix != settings.dataset_prefix.strip("/"):
        log.info("retraining the champion's dataset %s", prefix)
        return settings.model_copy(update={"dataset_prefix": prefix})
    return settings
