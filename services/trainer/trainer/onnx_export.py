"""The winner converted to ONNX, for a predictor that starts without scikit-learn or SciPy.

An all-numeric pipeline converts whole (skl2onnx: imputer, scaler and estimator in one graph over the records'
matrix). A pipeline over categorical or text columns converts in two parts: its fitted preprocessing written as
JSON (`featurizer_spec`) that `sommelier_contract.featurize` replays without scikit-learn, and its estimator
converted by skl2onnx over those columns. skl2onnx cannot convert the text features themselves: TF-IDF over
character n-grams within words (`char_wb`) and accent stripping raise NotImplementedError in skl2onnx 1.20, and
ONNX Runtime's Tokenizer matches `\\w` in ASCII only, which would split "rosé" where scikit-learn does not.

Only a faithful conversion is kept: the served probabilities (featurizer and ONNX model together) must match the
pipeline's on the holdout within TOLERANCE (ONNX Runtime computes in float32; a tree split that flips on a rounded
value shows up here). What is not converted, and why, is in the manifest's `serving` entry; such a model is served
by the unpickled pipeline, as before.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from sommelier_contract.onnx_model import OnnxModel

log = logging.getLogger(__name__)
TOLERANCE = 1e-5
CHECK_ROWS = 2_000


class Unsupported(Exception):
    """A fitted step the featurizer cannot replay exactly; the message says which and why."""


def export(pipeline: Any, features: list[dict[str, Any]], X_holdout: np.ndarray) -> tuple[dict[str, bytes], dict[str, Any]]:
    """({artifact name: bytes}: "onnx", and "featurizer" when the preprocessing is replayed outside ONNX, or nothing;
    what was found), ready for the manifest's `serving` entry. Checked on up to CHECK_ROWS holdout rows (a random part of
    more: the featurizer replays letter n-grams in Python, ~2 ms a review)."""
    if len(X_holdout) > CHECK_ROWS:
        X_holdout = X_holdout[np.sort(np.random.default_rng(0).permutation(len(X_holdout))[:CHECK_ROWS])]
    expected = pipeline.predict_proba(X_holdout) if len(X_holdout) else None
    try:
        spec = None if all(f["type"] == "numeric" for f in features) else featurizer_spec(pipeline.steps[0][1])
        featurizer = None if spec is None else json.dumps(spec, separators=(",", ":")).encode()
        best: tuple[float, bytes] | None = None
        failed: Exception | None = None
        for body in _conversions(pipeline, len(features) if spec is None else spec["width"], whole=spec is None):
            try:  # the holdout through the code the predictor serves with (sommelier_contract.onnx_model)
                converted = OnnxModel(body, featurizer).predict_proba(X_holdout)
            except Exception as err:  # a graph ONNX Runtime cannot load or run in this type: the next type
                failed = err
                continue
            diff = float(np.abs(converted - expected).max()) if expected is not None else float("inf")
            if best is None or diff < best[0]:
                best = (diff, body)
            if diff <= TOLERANCE:
                break
        if best is None:
            raise failed or RuntimeError("skl2onnx produced no model")
    except Unsupported as err:
        log.info("no ONNX conversion: %s", err)
        return {}, {"runtime": "joblib", "onnx": f"not converted: {err}"}
    except Exception as err:  # skl2onnx raises many kinds for what it cannot convert
        log.info("no ONNX conversion: %s: %s", type(err).__name__, err)
        return {}, {"runtime": "joblib", "onnx": f"not converted: {type(err).__name__}: {str(err)[:300]}"}
    diff, body = best
    blobs = {"onnx": body} | ({} if featurizer is None else {"featurizer": featurizer})
    report = {"max_abs_diff": diff, "holdout_rows": len(X_holdout), "tolerance": TOLERANCE, "bytes": sum(map(len, blobs.values()))}
    if not diff <= TOLERANCE:
        log.info("ONNX conversion refused: probabilities differ by up to %.3g on the holdout", diff)
        return {}, {"runtime": "joblib", "onnx": f"not used: probabilities differ by up to {diff:.3g} on the holdout "
                    f"(tolerance {TOLERANCE:g})", **report}
    how = "converted" if spec is None else "converted: the estimator, over the features the predictor computes from the records"
    log.info("ONNX conversion kept: probabilities within %.3g of the pipeline's on %d holdout rows", diff, len(X_holdout))
    return blobs, {"runtime": "onnx", "onnx": how, **report}


def _conversions(pipeline: Any, width: int, whole: bool) -> Iterator[bytes]:
    """ONNX models of the winner, the likelier faithful first. The whole pipeline takes float32 (ONNX Runtime's tree
    and linear operators compute in it). An estimator over the featurizer's columns is tried in float64 first
    (complement naive Bayes over 6,000 TF-IDF columns strays up to 8e-6 from scikit-learn in float32, 2e-14 in
    float64), then in float32 (a random forest converts to float64 but answers wrongly there: 0.18 off; its float32
    graph is within 7e-7). A type skl2onnx cannot convert to is skipped; when none converts, raises what it raised."""
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    estimator = pipeline.steps[-1][1]
    if not whole:
        body = calibrated_linear(estimator, width)
        if body is not None:
            yield body
        body = softmax_linear(estimator, width)
        if body is not None:
            yield body
    model, types = (pipeline, [FloatTensorType]) if whole else (estimator, [DoubleTensorType, FloatTensorType])
    converted = 0
    for i, tensor in enumerate(types):
        try:
            with _bools_as_ints():
                body = to_onnx(model, initial_types=[("X", tensor([None, width]))],
                               options={id(estimator): {"zipmap": False}}).SerializeToString()
        except Exception:  # no converter for this estimator in this type: the next type, or what the last one raised
            if i == len(types) - 1 and not converted:
                raise
            continue
        converted += 1
        yield body


def calibrated_linear(model: Any, width: int) -> bytes | None:
    """A sigmoid-calibrated linear classifier (CalibratedClassifierCV over LinearSVC or LogisticRegression, more than two
    classes) as one small float64 graph, or None for any other model. skl2onnx writes such a model with a few nodes per
    class and fold: with the reviews file's 40 countries and 3 folds, ~1,100 nodes, whose session ONNX Runtime took
    330-400 ms to build at every cold start (model loading 15 ms; measured 2026-12-02 on the 130,000-row champion).
    Here each fold is a handful of nodes over all its classes at once, as scikit-learn computes it: decisions
    X @ coef.T + intercept, probabilities 1 / (1 + exp(a * d + b)) per class, placed in the model's class order (a
    fold's estimator may lack a rare class: its column stays 0), normalised by their sum (uniform where the sum is
    0), then the mean over the folds. export() keeps it only if it matches the pipeline on the holdout."""
    from onnx import TensorProto, helper, numpy_helper
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    if not isinstance(model, CalibratedClassifierCV) or model.method != "sigmoid" or len(model.classes_) <= 2:
        return None
    folds = model.calibrated_classifiers_
    if not all(isinstance(f.estimator, LinearSVC | LogisticRegression) and f.estimator.coef_.shape[0] > 1 for f in folds):
        return None
    n = len(model.classes_)
    index = {c: i for i, c in enumerate(model.classes_)}
    nodes, inits = [], []

    def const(name: str, value: Any, dtype: Any = np.float64) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    one, zero, uniform = const("one", 1.0), const("zero", 0.0), const("uniform", np.full((1, n), 1.0 / n))
    means = []
    for k, fold in enumerate(folds):
        est = fold.estimator
        place = np.zeros((len(est.classes_), n))
        place[np.arange(len(est.classes_)), [index[c] for c in est.classes_]] = 1.0
        a = np.array([c.a_ for c in fold.calibrators], dtype=np.float64)
        b = np.array([c.b_ for c in fold.calibrators], dtype=np.float64)
        d = node("Add", [node("MatMul", ["X", const(f"w{k}", est.coef_.T)], f"xw{k}"), const(f"c{k}", est.intercept_)], f"d{k}")
        z = node("Add", [node("Mul", [d, const(f"a{k}", a)], f"ad{k}"), const(f"b{k}", b)], f"z{k}")
        sig = node("Reciprocal", [node("Add", [node("Exp", [z], f"e{k}"), one], f"ep{k}")], f"s{k}")
        full = node("MatMul", [sig, const(f"p{k}", place)], f"f{k}")
        total = node("ReduceSum", [full, const(f"ax{k}", [1], np.int64)], f"t{k}", keepdims=1)
        nonzero = node("Not", [node("Equal", [total, zero], f"iz{k}")], f"nz{k}")
        safe = node("Where", [nonzero, total, one], f"sf{k}")
        means.append(node("Where", [nonzero, node("Div", [full, safe], f"q{k}"), uniform], f"m{k}"))
    summed = node("Sum", means, "summed")
    proba = node("Div", [summed, const("folds", float(len(folds)))], "probabilities")
    node("ArgMax", [proba], "label", axis=1, keepdims=0)
    graph = helper.make_graph(nodes, "calibrated_linear", [helper.make_tensor_value_info("X", TensorProto.DOUBLE, [None, width])],
                              [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                               helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [None, n])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], producer_name="sommelier",
                             ir_version=8).SerializeToString()  # opset 15 is IR 8: any ONNX Runtime that runs it loads it


def softmax_linear(model: Any, width: int) -> bytes | None:
    """sommelier_contract.experts.FeatureExperts (one linear model, its calibration folded in) as a float64 graph:
    probabilities softmax(X @ coef.T + intercept); None for any other model. skl2onnx knows no converter for it."""
    from onnx import TensorProto, helper, numpy_helper

    from sommelier_contract.experts import FeatureExperts

    if not isinstance(model, FeatureExperts):
        return None
    n = len(model.classes_)
    inits = [numpy_helper.from_array(np.asarray(model.coef_.T, dtype=np.float64), "w"),
             numpy_helper.from_array(np.asarray(model.intercept_, dtype=np.float64), "c")]
    nodes = [helper.make_node("MatMul", ["X", "w"], ["xw"]), helper.make_node("Add", ["xw", "c"], ["scores"]),
             helper.make_node("Softmax", ["scores"], ["probabilities"], axis=1),
             helper.make_node("ArgMax", ["scores"], ["label"], axis=1, keepdims=0)]
    graph = helper.make_graph(nodes, "softmax_linear", [helper.make_tensor_value_info("X", TensorProto.DOUBLE, [None, width])],
                              [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                               helper.make_tensor_value_info("probabilities", TensorProto.DOUBLE, [None, n])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], producer_name="sommelier",
                             ir_version=8).SerializeToString()


@contextmanager
def _bools_as_ints() -> Iterator[None]:
    """skl2onnx 1.20 gives HistGradientBoosting's leaves `nodes_missing_value_tracks_true=False`, a bool that
    protobuf 6+ refuses in an int list ("Expected an int, got a boolean"), so no gradient-boosting model converted;
    this hands skl2onnx's node builder those lists as ints (the value ONNX means) while a conversion runs."""
    from skl2onnx.common import _container

    make_node = _container.make_node

    def as_ints(*args: Any, **attrs: Any) -> Any:
        fixed = {k: [int(v) if isinstance(v, (bool, np.bool_)) else v for v in value] if isinstance(value, list) else value
                 for k, value in attrs.items()}
        return make_node(*args, **fixed)

    _container.make_node = as_ints
    try:
        yield
    finally:
        _container.make_node = make_node


def featurizer_spec(prep: Any) -> dict[str, Any]:
    """The fitted ColumnTransformer as `sommelier_contract.featurize.Featurizer`'s JSON spec; Unsupported for a step
    it cannot replay."""
    from sklearn.compose import ColumnTransformer

    if not isinstance(prep, ColumnTransformer) or prep.remainder != "drop":
        raise Unsupported(f"the preprocessing is a {type(prep).__name__}, which the featurizer does not replay")
    blocks: list[dict[str, Any]] = []
    offset = 0
    for name, step, columns in prep.transformers_:
        if name == "remainder" or step == "drop":
            continue
        for block in _blocks(step, columns):
            block["offset"] = offset
            offset += block.pop("width")
            blocks.append(block)
    return {"width": offset, "blocks": blocks}


def _blocks(step: Any, columns: Any) -> list[dict[str, Any]]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from sommelier_contract.experts import Presence

    if isinstance(step, Presence):
        return [{"kind": "presence", "columns": [int(c) for c in columns], "kinds": list(step.kinds), "width": len(step.kinds)}]
    if isinstance(step, Pipeline):
        return [_numeric(step, list(columns))]
    if isinstance(step, OneHotEncoder):
        return [_onehot(step, list(columns))]
    if isinstance(step, TfidfVectorizer):
        return [_tfidf(step, int(columns))]
    if isinstance(step, FeatureUnion) and all(isinstance(part, TfidfVectorizer) for _, part in step.transformer_list):
        return [_tfidf(part, int(columns)) for _, part in step.transformer_list]
    raise Unsupported(f"a {type(step).__name__} step, which the featurizer does not replay")


def _numeric(step: Any, columns: list[int]) -> dict[str, Any]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    names = [type(s).__name__ for _, s in step.steps]
    if len(step.steps) != 2 or not isinstance(step.steps[0][1], SimpleImputer):
        raise Unsupported(f"numeric steps {names}, which the featurizer does not replay")
    impute, scale = step.steps[0][1], step.steps[1][1]
    if impute.add_indicator:
        raise Unsupported("an imputer that adds indicator columns")
    kept = [i for i, v in enumerate(impute.statistics_) if not np.isnan(v)]  # a column empty in training is dropped
    steps: list[tuple[str, Any]]
    if isinstance(scale, StandardScaler):
        steps = ([("subtract", scale.mean_.tolist())] if scale.with_mean else []) + \
                ([("divide", scale.scale_.tolist())] if scale.with_std else [])
    elif isinstance(scale, MinMaxScaler):
        steps = [("multiply", scale.scale_.tolist()), ("add", scale.min_.tolist())] + \
                ([("clip", list(scale.feature_range))] if scale.clip else [])
    else:
        raise Unsupported(f"a {type(scale).__name__} scaler, which the featurizer does not replay")
    return {"kind": "numeric", "columns": [columns[i] for i in kept], "fill": [float(impute.statistics_[i]) for i in kept],
            "steps": steps, "width": len(kept)}


def _onehot(enc: Any, columns: list[int]) -> dict[str, Any]:
    if enc.drop_idx_ is not None or enc.handle_unknown not in ("ignore", "infrequent_if_exist"):
        raise Unsupported("a one-hot encoder that drops a category or refuses unknown values")
    infrequent = getattr(enc, "infrequent_categories_", [None] * len(columns))
    index, other, width = [], [], 0
    for cats, rare in zip(enc.categories_, infrequent, strict=True):
        rare_set = set() if rare is None else {str(c) for c in rare}
        frequent = [str(c) for c in cats if str(c) not in rare_set]
        at = {c: width + k for k, c in enumerate(frequent)}
        width += len(frequent)
        if rare_set:  # the infrequent values, and with infrequent_if_exist any unknown one, share the last column
            at |= dict.fromkeys(rare_set, width)
            other.append(width if enc.handle_unknown == "infrequent_if_exist" else None)
            width += 1
        else:
            other.append(None)
        index.append(at)
    from sommelier_contract.experts import AbsentOneHot

    return {"kind": "onehot", "columns": columns, "index": index, "other": other, "width": width,
            **({"absent": "nothing"} if isinstance(enc, AbsentOneHot) else {})}


def _tfidf(vec: Any, column: int) -> dict[str, Any]:
    if not isinstance(vec.analyzer, str) or vec.preprocessor is not None or vec.tokenizer is not None:
        raise Unsupported("a text step with its own analyzer, preprocessor or tokenizer")
    if vec.stop_words is not None or vec.binary or vec.input != "content" or vec.strip_accents not in (None, "unicode", "ascii"):
        raise Unsupported("a text step with stop words, binary counts, non-text input or another accent rule")
    return {"kind": "tfidf", "column": column, "analyzer": vec.analyzer, "ngram_range": list(vec.ngram_range),
            "lowercase": bool(vec.lowercase), "strip_accents": vec.strip_accents, "token_pattern": vec.token_pattern,
            "sublinear_tf": bool(vec.sublinear_tf), "norm": vec.norm, "idf": vec.idf_.tolist() if vec.use_idf else None,
            "vocabulary": {term: int(j) for term, j in vec.vocabulary_.items()}, "width": len(vec.vocabulary_)}
