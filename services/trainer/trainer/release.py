"""Moving the champion by a person's command (`make promote`, `make rollback`): the version is verified first, and a
promotion that changes the API for its callers (features accepted, classes answered) waits for a confirmation.
The schedule's and the gate's promotions are train.run's; the canary's, canary.evaluate's."""

from __future__ import annotations

import logging

from sommelier_contract import pointers
from sommelier_contract.artifacts import ArtifactRejected, contract_change, load_verified, read_manifest
from trainer import artifacts
from trainer.config import Settings

log = logging.getLogger("trainer")


class NeedsConfirmation(Exception):
    """The promotion would change the API for its callers; the message names the change and how to confirm it."""


def promote(settings: Settings, s3, version: str, *, by: str, why: str, confirmed: bool, now: str) -> pointers.Champion:
    """Make `version` the champion, its artifacts verified first; who, when and why go into its signed manifest."""
    signed = artifacts.signatures(settings)
    manifest, _, _ = load_verified(s3, settings.model_bucket, version, signed)
    current = pointers.read_champion(s3, settings.model_bucket)
    try:
        change = current and contract_change(read_manifest(s3, settings.model_bucket, current.version), manifest.features, manifest.classes)
    except ArtifactRejected as err:  # the pointer names a missing or broken version: nothing to compare with
        log.warning("the current champion cannot be read (%s); promoting %s replaces it", err, version)
        change = None
    if change and not confirmed:
        raise NeedsConfirmation(f"promoting {version} changes the API for its callers: {change}. "
                                f"Confirm with `make promote VERSION={version} YES=1`")
    return artifacts.promote_by_hand(s3, settings.model_bucket, version, by, why, now, signed)


def rollback(settings: Settings, s3, now: str) -> pointers.Champion:
    """Restore the champion before the current one (verified first)."""
    target = pointers.rollback_target(s3, settings.model_bucket)
    load_verified(s3, settings.model_bucket, target.version, artifacts.signatures(settings))
    current = pointers.read_champion(s3, settings.model_bucket)
    return pointers.promote(s3, settings.model_bucket, target.version, f"rollback from {current.version if current else 'no champion'}", now,
                            previous=target.previous)
