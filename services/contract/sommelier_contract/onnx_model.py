"""A model's ONNX artifacts as the predictor serves them, and as the trainer checks them on the holdout before it
keeps them: the same code on both sides, so what the trainer measured is what answers.

`onnx`: the graph (the whole pipeline over the records' matrix, or the estimator over the featurizer's columns);
`featurizer`: featurizer.json, when there is one (sommelier_contract.featurize). The graph's input type decides
float32 or float64. ONNX Runtime runs with one thread that does not spin: a worker answers one request at a time and
the workers are the parallelism (its default pool, a thread per core spinning after each run, made 16 warm workers on
2 cores fight for the CPU). onnxruntime is imported here, when a model is built, not when this module is.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from sommelier_contract.featurize import Featurizer


class OnnxModel:
    def __init__(self, onnx: bytes, featurizer: bytes | None = None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only: a graph optimiser's notes (an unused initializer) are no user's business
        self._session: Any = onnxruntime.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
        first = self._session.get_inputs()[0]
        self._input, self._dtype = first.name, np.float64 if first.type == "tensor(double)" else np.float32
        self._classes = self._session.get_outputs()[1].shape[1]  # skl2onnx's probabilities: [rows, classes]
        self._featurizer = Featurizer(json.loads(featurizer)) if featurizer is not None else None

    @property
    def featurizer(self) -> Featurizer | None:
        return self._featurizer

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (float64), one row per row of X (the records' matrix)."""
        if not len(X):  # some graphs refuse no rows (ArrayFeatureExtractor: "num_indices = 0")
            return np.zeros((0, self._classes))
        chunks = [X] if self._featurizer is None else self._featurizer.chunks(X)
        return np.concatenate([self._session.run(None, {self._input: chunk.astype(self._dtype)})[1] for chunk in chunks]
                              ).astype(np.float64)
