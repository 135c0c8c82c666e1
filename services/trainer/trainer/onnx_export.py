"""The winner converted to ONNX, for a predictor that starts without scikit-learn or SciPy.

Only a faithful conversion is kept: the ONNX model's probabilities must match the pipeline's on
the holdout within TOLERANCE (ONNX Runtime computes in float32; a tree split that flips on a
rounded value shows up here). Pipelines over text or categorical columns are not converted (their
ONNX graphs need string inputs per column and skl2onnx cannot express every option we use), nor is
anything skl2onnx cannot convert: those models are served by the pipeline, as before.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)
TOLERANCE = 1e-5


def export(pipeline: Any, features: list[dict[str, Any]], X_holdout: np.ndarray) -> tuple[bytes | None, dict[str, Any]]:
    """(the ONNX model's bytes, or None; what was found), ready for the manifest's `serving` entry."""
    kinds = sorted({f["type"] for f in features} - {"numeric"})
    if kinds:
        return None, {"runtime": "joblib", "onnx": f"not converted: {' and '.join(kinds)} features are served by the pipeline"}
    try:
        import onnxruntime
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType

        model = to_onnx(pipeline, initial_types=[("X", FloatTensorType([None, len(features)]))],
                        options={id(pipeline.steps[-1][1]): {"zipmap": False}})
        body = model.SerializeToString()
        session = onnxruntime.InferenceSession(body, providers=["CPUExecutionProvider"])
        converted = session.run(None, {"X": X_holdout.astype(np.float32)})[1]
    except Exception as err:  # skl2onnx raises many kinds for what it cannot convert
        log.info("no ONNX conversion: %s: %s", type(err).__name__, err)
        return None, {"runtime": "joblib", "onnx": f"not converted: {type(err).__name__}: {str(err)[:300]}"}
    diff = float(np.abs(converted - pipeline.predict_proba(X_holdout)).max()) if len(X_holdout) else float("inf")
    report = {"max_abs_diff": diff, "holdout_rows": len(X_holdout), "tolerance": TOLERANCE, "bytes": len(body)}
    if not diff <= TOLERANCE:
        log.info("ONNX conversion refused: probabilities differ by up to %.3g on the holdout", diff)
        return None, {"runtime": "joblib", "onnx": f"not used: probabilities differ by up to {diff:.3g} on the holdout "
                      f"(tolerance {TOLERANCE:g})", **report}
    log.info("ONNX conversion kept: probabilities within %.3g of the pipeline's on %d holdout rows", diff, len(X_holdout))
    return body, {"runtime": "onnx", "onnx": "converted", **report}
