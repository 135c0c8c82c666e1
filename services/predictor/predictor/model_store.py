"""Loads the promoted ("champion") model from the model bucket and keeps it warm.

Artifacts are used only after the manifest's signature verifies, their sha256 matches the manifest
and the manifest's scikit-learn version matches the one installed here; a model with a faithful
ONNX conversion answers through ONNX Runtime and unpickles nothing until an explanation asks. The champion pointer is re-read at
most every `refresh_seconds`; a newly promoted model replaces the cached one between
requests, and a broken new one never replaces a working one. A candidate pointer, when there is
one, names a model served to a share of predictions (a canary); a candidate that cannot be
loaded is simply not served.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from sommelier_contract import layout
from sommelier_contract.artifacts import ArtifactRejected, DocumentUnreadable, Signatures, missing, parse_document, read_manifest, unpickle, verified_artifacts
from sommelier_contract.featurize import word_counter
from sommelier_contract.manifest import Manifest
from sommelier_contract.onnx_model import OnnxModel
from sommelier_contract.pointers import Candidate, Champion, champion_history
from sommelier_contract.records import RecordValidator, WordCounter, learned_values

log = logging.getLogger(__name__)
__all__ = ["ArtifactRejected", "LoadedModel", "ModelStore", "ModelUnavailable", "load_model"]


def _sklearn_here() -> bool:
    """Whether scikit-learn is installed (the SnapStart zip's layer leaves it out), looked up without importing it."""
    return importlib.util.find_spec("sklearn") is not None


class ModelUnavailable(Exception):
    """No promoted model can be served (none promoted yet, or the promoted one was refused)."""


@dataclass
class LoadedModel:
    """One verified model version. It answers through ONNX Runtime when the trainer wrote a faithful ONNX
    conversion (no scikit-learn or SciPy import: a cold start pays for onnxruntime only), else through the
    unpickled scikit-learn pipeline; the pipeline is unpickled on first use either way (explanations need it)."""

    version: str
    manifest: Manifest
    validator: RecordValidator = field(repr=False)
    blobs: dict[str, bytes] = field(repr=False)
    runtime: str = field(init=False, default="joblib")

    def __post_init__(self) -> None:
        self._onnx: OnnxModel | None = None
        if "onnx" in self.blobs:
            try:
                self._onnx = OnnxModel(self.blobs["onnx"], self.blobs.get("featurizer"))
                self.runtime = "onnx"
            except Exception as err:  # an artifact this runtime cannot run: the pipeline answers instead
                log.warning("model %s: the ONNX artifact does not load (%s); serving the scikit-learn pipeline", self.version, err)
        if self._onnx is None:
            if not _sklearn_here():
                raise ArtifactRejected(f"model {self.version} has no ONNX conversion this runtime can run, and this package has no "
                                       "scikit-learn to unpickle its pipeline: serve it from the predictor image (docs/deploying.md)")
            _ = self.pipeline  # unpickle now, not on the first request

    @property
    def features(self) -> list[dict[str, Any]]:
        return self.manifest.features

    @property
    def labels(self) -> list[str]:
        return self.manifest.classes

    @cached_property
    def pipeline(self) -> Any:
        return unpickle(self.blobs["pipeline"])

    @cached_property
    def pipeline_here(self) -> Any | None:
        """The pipeline where scikit-learn is installed; None where it is not and ONNX Runtime answers (the SnapStart zip
        leaves scikit-learn and SciPy out to stay under Lambda's 250 MB): explanations are then made through ONNX."""
        if self._onnx is not None and not _sklearn_here():
            return None
        return self.pipeline

    @cached_property
    def familiarity(self) -> tuple[dict[str, WordCounter], dict[str, frozenset[str]]]:
        """What the model learned, to tell an input unlike its training data (records.unusual): per text feature, a word
        counter over its vocabulary (the featurizer's, else the pipeline's vectorizer), and per categorical feature the
        values it learned."""
        names = [f["name"] for f in self.features]
        if self._onnx is not None and self._onnx.featurizer is not None:
            counters = self._onnx.featurizer.word_counters()
            words = {names[column]: count for column, count in counters.items()}
        elif any(f["type"] == "text" for f in self.features):
            words = pipeline_word_counters(self.pipeline, names)
        else:
            words = {}
        return words, learned_values(self.features)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities, one row per record, columns in `labels` order."""
        return self.pipeline.predict_proba(X) if self._onnx is None else self._onnx.predict_proba(X)

    def predict(self, X: np.ndarray) -> list[dict[str, Any]]:
        """label, confidence and probabilities (rounded to 6 places) of each row of X."""
        proba = self.predict_proba(X)
        labels = self.labels
        return [{"label": labels[b], "confidence": row[b], "probabilities": dict(zip(labels, row, strict=True))}
                for b, row in zip(proba.argmax(axis=1).tolist(), proba.round(6).tolist(), strict=True)]


def pipeline_word_counters(pipeline: Any, names: list[str]) -> dict[str, WordCounter]:
    """Per text feature, (words in the fitted vectorizer's vocabulary, words) of a text, cut as the vectorizer cuts it:
    the ColumnTransformer's parts over one text column (`text_<column>`, or `f<column>` in a model of every subset: a
    vectorizer, or a union whose first part is the word vectorizer)."""
    steps = getattr(pipeline, "steps", [])
    columns = next((step for _, step in steps if hasattr(step, "transformers_")), None)
    out: dict[str, WordCounter] = {}
    for _, part, column in getattr(columns, "transformers_", []):
        if not isinstance(column, int):  # a text part takes its one column as a scalar (a 1-D column of documents)
            continue
        vectorizer = part.transformer_list[0][1] if hasattr(part, "transformer_list") else part
        if getattr(vectorizer, "analyzer", None) != "word":
            continue
        prepare, tokens = vectorizer.build_preprocessor(), vectorizer.build_tokenizer()

        def words(doc: str, prepare: Any = prepare, tokens: Any = tokens) -> list[str]:
            return tokens(prepare(doc))

        out[names[column]] = word_counter(words, vectorizer.vocabulary_)
    return out


def _pointer(s3, bucket: str, key: str) -> tuple[dict[str, Any], str]:
    """A pointer's document (champion or candidate: pointers.Champion / Candidate parse it) and which write of it this
    is (its S3 version id, else its ETag): a pointer written again, even to the version already loaded, is a new
    decision to verify."""
    resp = s3.get_object(Bucket=bucket, Key=key)
    return parse_document(resp["Body"].read(), key, required=("version",)), str(resp.get("VersionId") or resp.get("ETag") or "")


def load_model(s3, bucket: str, version: str, signatures: Signatures) -> LoadedModel:
    """Fetch and verify (signature, library, checksums) one model version from `bucket`, ready to answer."""
    manifest, blobs = verified_artifacts(s3, bucket, version, signatures)
    return LoadedModel(version=version, manifest=manifest, validator=RecordValidator(manifest.features), blobs=blobs)


class ModelStore:
    def __init__(self, s3, bucket: str, refresh_seconds: float, signatures: Signatures, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self._s3 = s3
        self._wall = wall
        self._signatures = signatures
        self._bucket = bucket
        self._refresh = refresh_seconds
        self._clock = clock
        self._model: LoadedModel | None = None
        self._pointer_tag: str | None = None  # the champion pointer write the loaded model was verified for
        self._candidate_tag: str | None = None
        self._checked_at = float("-inf")
        self._checked_wall = float("-inf")  # the same moment by the wall clock (restored)
        self._candidate: LoadedModel | None = None
        self._candidate_percent = 0.0
        self._manifests: dict[str, Manifest] = {}
        self.degraded: str | None = None  # why the champion is not what is served, when it is not

    @property
    def loaded_version(self) -> str | None:
        return self._model.version if self._model else None

    def restored(self) -> None:
        """In a worker restored from a snapshot: the champion pointer is read at the next request unless the snapshot read
        it less than `refresh_seconds` ago by the wall clock (a snapshot may resume hours later, and a monotonic clock need
        not run across a restore), so a model promoted after the snapshot is served within the same bound as by any warm
        worker."""
        age = self._wall() - self._checked_wall
        self._checked_at = self._clock() - age if 0 <= age < self._refresh else float("-inf")

    def current(self) -> LoadedModel:
        now = self._clock()
        if self._model is not None and now - self._checked_at < self._refresh:
            return self._model
        try:
            pointer, tag = _pointer(self._s3, self._bucket, layout.CHAMPION_KEY)
        except ClientError as err:
            if missing(err):
                raise ModelUnavailable("no model has been promoted yet; train one with `make train`") from err
            return self._keep_serving(err)
        except BotoCoreError as err:
            return self._keep_serving(err)
        except DocumentUnreadable as err:  # a bad write of the pointer: what was served stays (or an earlier champion)
            self._checked_at, self._checked_wall = now, self._wall()
            return self._refused("the champion pointer", None, err)
        self._checked_at, self._checked_wall = now, self._wall()
        self._refresh_candidate()
        version = Champion.parse(pointer).version
        if self._model is not None and self._model.version == version and tag == self._pointer_tag:
            self.degraded = None  # the pointer reads well again and names what is served (a bad write of it was undone)
            return self._model
        try:
            self._model = load_model(self._s3, self._bucket, version, self._signatures)
            self._pointer_tag = tag
        except (ClientError, BotoCoreError) as err:  # S3 or KMS unreachable or refusing now: nothing is decided, retry
            if self._model is None or isinstance(err, ClientError) and missing(err):
                return self._refused(f"the champion {version}", version, err)
            log.warning("cannot verify champion %s now (%s); still serving %s", version, err, self._model.version)
            return self._model
        except (ArtifactRejected, KeyError) as err:
            return self._refused(f"the champion {version}", version, err)
        self.degraded = None
        log.info("loaded model %s", version)
        return self._model

    def _refused(self, what: str, version: str | None, err: Exception) -> LoadedModel:
        """The champion pointer cannot be read, or names a `version` that does not verify: serve what was served (unless it
        is that version), else the newest earlier champion that verifies, else ModelUnavailable (a 503 naming `what`). A
        copy of the refused version loaded before (it verified then) is never kept: what the gate refuses now is not served."""
        self.degraded = f"{what} was refused ({err})"
        log.error("refused %s: %s", what, err)
        if self._model is None or self._model.version == version:
            self._model = self._fallback(version)
            if self._model is None:
                raise ModelUnavailable(f"{what} could not be used and no earlier champion verifies: {err}") from err
        self.degraded += f"; serving {self._model.version}"
        log.warning("still serving %s", self._model.version)
        return self._model

    def _fallback(self, refused: str | None, tries: int = 5) -> LoadedModel | None:
        """The newest earlier champion that verifies (a new worker must not go down with a bad pointer while the
        workers started before it keep serving): the champion pointer's own S3 versions, newest first."""
        seen = {refused}
        try:
            for pointer in champion_history(self._s3, self._bucket):
                earlier = pointer.version
                if not earlier or earlier in seen:
                    continue
                seen.add(earlier)
                try:
                    model = load_model(self._s3, self._bucket, earlier, self._signatures)
                except (ArtifactRejected, ClientError, KeyError) as err:
                    log.error("refused earlier champion %s: %s", earlier, err)
                    if len(seen) > tries:
                        return None
                    continue
                log.warning("serving the earlier champion %s instead of the refused %s", earlier, refused)
                return model
        except (ClientError, BotoCoreError, ValueError) as err:
            log.error("cannot list earlier champions: %s", err)
        return None

    def for_prediction(self, draw: float) -> LoadedModel:
        """The model that answers one prediction request: the candidate for draws under its share, else the champion.
        `draw` is uniform in [0, 1) (random.random() in the handler; fixed values in tests)."""
        champion = self.current()
        if self._candidate is not None and self._candidate.version != champion.version and draw * 100 < self._candidate_percent:
            return self._candidate
        return champion

    def manifest_of(self, version: str) -> Manifest | None:
        """The manifest of any model version (feedback on an older prediction needs its model's dataset):
        the loaded ones from memory, others read once from the model bucket and kept."""
        for model in (self._model, self._candidate):
            if model is not None and model.version == version:
                return model.manifest
        if version not in self._manifests:
            try:
                self._manifests[version] = read_manifest(self._s3, self._bucket, version)
            except (ClientError, BotoCoreError, ArtifactRejected) as err:
                log.warning("manifest of %s unreadable: %s", version, err)
                return None
            if len(self._manifests) > 32:  # a small, bounded memo: feedback mostly concerns recent models
                self._manifests.pop(next(iter(self._manifests)))
        return self._manifests[version]

    @property
    def candidate(self) -> tuple[str, float] | None:
        return (self._candidate.version, self._candidate_percent) if self._candidate else None

    def _refresh_candidate(self) -> None:
        try:
            pointer, tag = _pointer(self._s3, self._bucket, layout.CANDIDATE_KEY)
        except ClientError as err:
            if missing(err):
                self._candidate, self._candidate_percent = None, 0.0
            return  # unreadable now: keep what we had
        except DocumentUnreadable as err:  # a bad write of the candidate pointer: no canary, the champion answers all
            log.error("refused the candidate pointer: %s", err)
            self._candidate, self._candidate_percent = None, 0.0
            return
        except BotoCoreError:
            return
        candidate = Candidate.parse(pointer)
        try:
            if self._candidate is None or self._candidate.version != candidate.version or tag != self._candidate_tag:
                self._candidate = load_model(self._s3, self._bucket, candidate.version, self._signatures)
                self._candidate_tag = tag
                log.info("loaded candidate %s for %g%% of predictions", candidate.version, candidate.percent)
            self._candidate_percent = candidate.percent
        except (ArtifactRejected, ClientError, BotoCoreError, KeyError, ValueError, TypeError, AttributeError) as err:
            log.error("refused candidate %s: %s", candidate.version, err)
            self._candidate, self._candidate_percent = None, 0.0

    def _keep_serving(self, err: Exception) -> LoadedModel:
        if self._model is None:
            raise ModelUnavailable(f"cannot read the champion pointer: {err}") from err
        log.warning("cannot re-check the champion pointer (%s); still serving %s", err, self._model.version)
        return self._model
