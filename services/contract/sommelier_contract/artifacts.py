"""Reading model versions: the manifest, and the pickled artifacts only after they are verified.

A pickle runs code when loaded, so nothing is unpickled unless the manifest carries a valid
signature by the trainer's KMS key (anyone who can write the bucket can rewrite a checksum, nobody
but the trainer's role can sign), its sha256 matches the manifest, its key lies in the version's
own folder, and the manifest's scikit-learn is the one installed here. The ONNX artifact is never
unpickled (onnxruntime reads a protobuf), and is checked the same way.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from importlib.metadata import version as installed_version
from typing import Any

from botocore.exceptions import ClientError

from sommelier_contract import layout
from sommelier_contract.manifest import Manifest
from sommelier_contract.records import required_features
from sommelier_contract.words import words

ARTIFACTS = ("pipeline", "label_encoder")
# the pipeline converted to ONNX, when it converts faithfully, and for a pipeline over categories or text the fitted
# preprocessing the predictor replays before its estimator's ONNX graph (JSON; trainer/onnx_export.py)
OPTIONAL = ("onnx", "featurizer")


class ArtifactRejected(Exception):
    """A stored model cannot be used: missing, tampered with, or from another scikit-learn."""


class DocumentUnreadable(ArtifactRejected):
    """A small JSON document (a pointer, a signature, a split) that is not what it claims to be: not JSON, not an object,
    or without the field its readers need. Readers treat it as refused: a fallback or a 503 naming it, never a 500."""


class ArtifactNotListed(ArtifactRejected):
    """A verified manifest lists no artifact of that name (a model written before the artifact existed)."""


def missing(err: ClientError) -> bool:
    return err.response["Error"]["Code"] in {"NoSuchKey", "404", "NotFound"}


def parse_document(body: bytes, where: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The one way a small JSON document is read: an object, with each `required` field a non-empty string, or
    DocumentUnreadable naming `where` and what is wrong."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DocumentUnreadable(f"{where} is not JSON ({str(err)[:120]})") from err
    if not isinstance(doc, dict):
        raise DocumentUnreadable(f"{where} is not a JSON object (it holds {type(doc).__name__} {str(doc)[:60]})")
    for name in required:
        if not isinstance(doc.get(name), str) or not doc[name]:
            raise DocumentUnreadable(f"{where} names no {name} (it holds {str(doc)[:100]})")
    return doc


def read_json(s3, bucket: str, key: str, required: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """A small JSON object (a pointer, a signature, a split) through parse_document, or None when there is none."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as err:
        if missing(err):
            return None
        raise
    return parse_document(body, key, required)


class Signatures:
    """Manifests signed with an asymmetric KMS key (ECDSA P-256): the trainer's role may sign, the
    services verify. The signature covers the manifest's exact bytes (their SHA-256) and sits beside it
    in manifest.sig; a rewritten manifest (a canary decision added) is signed again."""

    ALGORITHM = "ECDSA_SHA_256"

    def __init__(self, kms, key_id: str, subject: str = "model", signer: str = "the trainer's key"):
        """`subject` and `signer` name what is signed and by whom in refusals (model monitoring's reports have a key of their own)."""
        self._kms, self.key_id, self.subject, self.signer = kms, key_id, subject, signer

    def sign(self, body: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(body).digest()
        resp = self._kms.sign(KeyId=self.key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm=self.ALGORITHM)
        return {"key_id": resp["KeyId"], "algorithm": self.ALGORITHM, "manifest_sha256": digest.hex(),
                "signature": base64.b64encode(resp["Signature"]).decode()}

    def verify(self, version: str, body: bytes, doc: dict[str, Any] | None) -> None:
        if not doc:
            raise ArtifactRejected(f"{self.subject} {version} is not signed; refusing it")
        if not isinstance(doc.get("signature"), str):
            raise ArtifactRejected(f"the signature of {self.subject} {version} holds no signature text; refusing it")
        digest = hashlib.sha256(body).digest()
        if doc.get("manifest_sha256") != digest.hex() or doc.get("algorithm") != self.ALGORITHM:
            raise ArtifactRejected(f"the signature of {self.subject} {version} is for another document; refusing it")
        try:  # always our key, never the one the signature document names
            valid = self._kms.verify(KeyId=self.key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm=self.ALGORITHM,
                                     Signature=base64.b64decode(doc["signature"])).get("SignatureValid")
        except ClientError as err:
            if err.response["Error"]["Code"] not in {"KMSInvalidSignatureException", "InvalidSignatureException", "ValidationException"}:
                raise
            valid = False
        except ValueError:  # not base64
            valid = False
        if not valid:
            raise ArtifactRejected(f"the signature of {self.subject} {version} does not verify with {self.signer}; refusing it")


def put_manifest(s3, bucket: str, manifest: Manifest, signatures: Signatures) -> None:
    """The manifest, then its signature: a version whose signature is missing is refused, never half-trusted."""
    body = manifest.to_json()
    s3.put_object(Bucket=bucket, Key=layout.manifest_key(manifest.version), Body=body, ContentType="application/json")
    s3.put_object(Bucket=bucket, Key=layout.signature_key(manifest.version), Body=json.dumps(signatures.sign(body)).encode(),
                  ContentType="application/json")


def _parse(version: str, body: bytes) -> Manifest:
    try:
        manifest = Manifest.from_json(body)
    except ValueError as err:  # JSONDecodeError included
        raise ArtifactRejected(f"the manifest of model {version} cannot be read: {err}") from err
    if manifest.version != version:
        raise ArtifactRejected(f"the manifest under {layout.model_prefix(version)} names version {manifest.version!r}")
    return manifest


def _manifest_body(s3, bucket: str, version: str) -> bytes:
    try:
        return s3.get_object(Bucket=bucket, Key=layout.manifest_key(version))["Body"].read()
    except ClientError as err:
        if missing(err):
            raise ArtifactRejected(f"there is no model version {version!r} (`make history` lists them)") from err
        raise


def read_manifest(s3, bucket: str, version: str) -> Manifest:
    """A version's manifest, as written (its signature is not checked: verified_artifacts does that)."""
    return _parse(version, _manifest_body(s3, bucket, version))


def _verified_manifest(s3, bucket: str, version: str, signatures: Signatures) -> Manifest:
    """A version's manifest, read only once its signature verifies."""
    body = _manifest_body(s3, bucket, version)
    signatures.verify(version, body, read_json(s3, bucket, layout.signature_key(version)))
    return _parse(version, body)


def verified_artifacts(s3, bucket: str, version: str, signatures: Signatures) -> tuple[Manifest, dict[str, bytes]]:
    """(manifest, {artifact name: bytes}) of one version, every artifact checked and none unpickled: the signature,
    then the library, then each artifact's folder and checksum. The optional ONNX artifact (OPTIONAL) is checked
    the same way when the manifest lists it."""
    manifest = _verified_manifest(s3, bucket, version, signatures)
    trained_with, here = manifest.libraries.get("scikit-learn"), installed_version("scikit-learn")
    if trained_with != here:
        raise ArtifactRejected(f"model {version} was trained with scikit-learn {trained_with}; this process has {here}")
    blobs = {name: _checked(s3, bucket, manifest, name) for name in ARTIFACTS + tuple(n for n in OPTIONAL if n in manifest.artifacts)}
    return manifest, blobs


def _checked(s3, bucket: str, manifest: Manifest, name: str) -> bytes:
    """One artifact of a verified manifest: in the version's own folder, and its sha256 the manifest's."""
    version, meta = manifest.version, manifest.artifacts.get(name)
    if not meta:
        raise ArtifactNotListed(f"the manifest of {version} lists no {name} artifact")
    if not meta.key.startswith(layout.model_prefix(version)):
        raise ArtifactRejected(f"artifact {name} of {version} points outside {layout.model_prefix(version)}: {meta.key}")
    args = {"Bucket": bucket, "Key": meta.key, **({"VersionId": meta.version_id} if meta.version_id else {})}
    try:
        blob = s3.get_object(**args)["Body"].read()
    except ClientError as err:
        if missing(err):
            raise ArtifactRejected(f"artifact {meta.key} of {version} is missing") from err
        raise
    digest = hashlib.sha256(blob).hexdigest()
    if digest != meta.sha256:
        raise ArtifactRejected(f"artifact {meta.key} has sha256 {digest}, its manifest says {meta.sha256}; refusing to load it")
    return blob


def verified_artifact(s3, bucket: str, version: str, name: str, signatures: Signatures) -> tuple[Manifest, bytes]:
    """(manifest, bytes) of one artifact that is never unpickled (model monitoring's baseline): the signature, then the
    artifact's folder and checksum; no library check, since no code of the model's libraries runs on it."""
    manifest = _verified_manifest(s3, bucket, version, signatures)
    return manifest, _checked(s3, bucket, manifest, name)


def unpickle(blob: bytes) -> Any:
    """A verified artifact (verified_artifacts) as the object it holds."""
    import joblib  # deferred: it brings scikit-learn's friends, and an ONNX-served model never unpickles

    return joblib.load(io.BytesIO(blob))


def load_verified(s3, bucket: str, version: str, signatures: Signatures) -> tuple[Manifest, Any, Any]:
    """(manifest, pipeline, label encoder) of one version: verified (verified_artifacts), then unpickled."""
    manifest, blobs = verified_artifacts(s3, bucket, version, signatures)
    return manifest, unpickle(blobs["pipeline"]), unpickle(blobs["label_encoder"])


def contract_change(before: Manifest, features: list[dict[str, Any]], classes: list[str]) -> str | None:
    """How the API's input (feature names and types) and its answers (classes) would change if a model
    with `features` and `classes` replaced the one the manifest `before` describes; None when they would not."""
    old = {f["name"]: f["type"] for f in before.features}
    new = {f["name"]: f["type"] for f in features}
    added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    # a feature a record may leave out (records.required_features) is optional, not required
    must = set(required_features(features))
    required, may = [n for n in added if n in must], [n for n in added if n not in must]
    parts = []
    if required:
        parts.append(f"new required features {words(required)}")
    if may:
        parts.append(f"new optional features {words(may)}")
    if removed:
        parts.append(f"features no longer accepted {words(removed)}")
    retyped = sorted(n for n in set(old) & set(new) if old[n] != new[n])
    if retyped:
        parts.append("features changing type " + ", ".join(f"{n} ({old[n]} -> {new[n]})" for n in retyped))
    if sorted(before.classes) != sorted(classes):
        gone, came = sorted(set(before.classes) - set(classes)), sorted(set(classes) - set(before.classes))
        if gone:
            parts.append(f"classes no longer answered {words(gone)}")
        if came:
            parts.append(f"new classes {words(came)}")
    return "; ".join(parts) or None
