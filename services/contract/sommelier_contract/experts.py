"""A model that answers any subset of its features: one linear model per feature, their scores summed.

A caller who sends only a review's words is not saying the winery is empty; it does not know it. A model trained on
whole rows cannot tell the two apart: on the wine reviews its words carry little weight beside the place names, and
left alone they answer badly (measured on bench/reviews.py's 5,000 rows, 13 countries, the description alone sent to
a words + letters linear SVM trained on all 14 columns: accuracy 0.43, macro F1 0.05, where a model of the description
alone reaches 0.67 / 0.57). Training with features dropped at random closed only part of the gap (0.55-0.61).

So each feature has an expert of its own (a linear SVM with balanced classes over that feature's columns, fitted on the
rows where it is present), and a record's score for a class is the sum of the experts of the features it carries: its
words alone are answered by the words' expert, exactly the model of the description alone; words, variety and winery
by those three (0.95 / 0.83 against 0.94 / 0.80 for a model trained on those three columns). A feature that is absent
adds nothing, not even its intercept, so an explanation never credits it.

In the fitted pipeline this is still one linear model: the preprocessing writes each feature's columns and a presence
column per feature (1 when the record carries it: `Presence`), the experts' weights sit side by side in `coef_` and
each expert's intercept is the weight of its presence column. Absent values write zeros: a category through
`AbsentOneHot`, a text as the empty text, a number filled with its training mean, which the scaler maps to 0.
Probabilities are the softmax of the experts' scores, each expert weighted: one non-negative number per expert, fitted
(least log loss) on out-of-fold scores of whole rows and of rows with random features taken away. One number per
expert never reorders the classes of a feature sent alone (a multinomial logistic regression over the summed scores,
tried first, did: fitted mostly on rows whose place names settle the answer, it cost the description alone 0.06-0.18
accuracy on 2,000 generated reviews), and lets the combination trust each expert as far as it earned (on 5,000
generated reviews, random subsets: accuracy 0.909 -> 0.913). Folded into `coef_`, so serving is one matrix product and
a softmax (trainer/onnx_export.py writes it as one).

Imports scikit-learn: the trainer, and a predictor that unpickles a pipeline, import this module; serving through ONNX
never does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.svm import LinearSVC

from sommelier_contract.records import ABSENT, present

PRESENCE = "presence"  # the ColumnTransformer's name for the presence columns
CALIBRATION_ROWS = 10_000  # out-of-fold rows the experts' weights are fitted on (each with its subset views)
DUAL_COLUMNS = 1000  # an expert over more columns than this (a text's) is fitted in the dual, at the C searched
OTHER_C = 0.3  # the C of every other expert (a category's, a number's)


class Presence(TransformerMixin, BaseEstimator):
    """One column per feature: 1.0 where the record carries it (`present`), else 0.0."""

    def __init__(self, kinds: tuple[str, ...] = ()):
        self.kinds = kinds

    def fit(self, X: Any, y: Any = None) -> Presence:
        self.n_features_in_ = len(self.kinds)
        return self

    def transform(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=object)
        return np.column_stack([present(X[:, j], kind) for j, kind in enumerate(self.kinds)]).astype(float) if len(X) else \
            np.zeros((0, len(self.kinds)))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = input_features if input_features is not None else [f"x{j}" for j in range(len(self.kinds))]
        return np.asarray([f"present_{n}" for n in names], dtype=object)


class AbsentOneHot(OneHotEncoder):
    """A one-hot encoder whose ABSENT value writes no column at all (where scikit-learn's would count it as an unknown
    value, in the infrequent column); every other value is encoded as OneHotEncoder encodes it."""

    def fit(self, X: Any, y: Any = None) -> AbsentOneHot:
        X = np.asarray(X, dtype=object)
        carried = np.array([all(v is not ABSENT for v in row) for row in X], dtype=bool)
        super().fit(X[carried] if carried.any() else np.full((1, X.shape[1]), "", dtype=object))
        names = self.get_feature_names_out([f"c{j}" for j in range(len(self.categories_))])
        self.widths_ = [sum(1 for n in names if n.startswith(f"c{j}_")) for j in range(len(self.categories_))]
        return self

    def transform(self, X: Any) -> Any:
        X = np.array(X, dtype=object, copy=True)
        gone = np.array([[v is ABSENT for v in row] for row in X], dtype=bool).reshape(X.shape)
        if not gone.any():
            return super().transform(X)
        for j in range(X.shape[1]):
            X[gone[:, j], j] = self.categories_[j][0]  # any known value, its columns cleared below
        out = super().transform(X)
        out = out.tolil() if sparse.issparse(out) else out
        edges = np.cumsum([0, *self.widths_])
        for j in range(X.shape[1]):
            rows = np.flatnonzero(gone[:, j])
            if len(rows):
                out[np.ix_(rows, np.arange(edges[j], edges[j + 1]))] = 0
        return out.tocsr() if sparse.issparse(out) else out


def blocks_of(prep: Any) -> tuple[tuple[int, int, int], ...]:
    """Per feature (in the records' order), (first column, end column, presence column) in the preprocessing's output;
    `prep`: a fitted ColumnTransformer of trainer/pipeline.py's `preprocessor(..., per_feature=True)`: a part `f<i>` for
    each feature i, then PRESENCE."""
    where = prep.output_indices_
    first = where[PRESENCE].start
    count = where[PRESENCE].stop - first
    return tuple((where[f"f{i}"].start, where[f"f{i}"].stop, first + i) for i in range(count))


def _block_of_columns(blocks: tuple[tuple[int, int, int], ...], width: int) -> np.ndarray:
    """Per output column, the feature it belongs to (its block or its presence column)."""
    owner = np.full(width, -1, dtype=np.int64)
    for k, (start, stop, flag) in enumerate(blocks):
        owner[start:stop] = k
        owner[flag] = k
    return owner


def without(Z: Any, owner: np.ndarray, keep: np.ndarray) -> Any:
    """Z with the features `keep` (rows x features, bool) marks False taken away: their columns set to 0, as
    serving writes an absent feature."""
    if sparse.issparse(Z):
        coo = Z.tocoo()
        kept = (owner[coo.col] < 0) | keep[coo.row, np.maximum(owner[coo.col], 0)]
        return sparse.csr_matrix((coo.data[kept], (coo.row[kept], coo.col[kept])), shape=Z.shape)
    mask = np.where(owner[None, :] < 0, True, keep[:, np.maximum(owner, 0)])
    return np.where(mask, Z, 0.0)


def _weights(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per expert, the weight (>= 0) by which its scores count in the sum: the least log loss of softmax(sum_k w_k s_k) on
    `truth` (class indexes); `scores`: rows x experts x classes, an absent expert's 0. A single weight for the words alone
    never reorders their classes; between experts, it trusts each as far as its scores earned (place names that repeat
    one another, a number's weak vote)."""
    from scipy.optimize import minimize

    rows = np.arange(len(truth))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = np.einsum("nkc,k->nc", scores, w)
        z = z - z.max(axis=1, keepdims=True)
        total = np.log(np.exp(z).sum(axis=1))
        p = np.exp(z - total[:, None])
        p[rows, truth] -= 1.0
        return float(np.mean(total - z[rows, truth])), np.einsum("nc,nkc->k", p, scores) / len(truth)

    found = minimize(loss, np.ones(scores.shape[1]), jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * scores.shape[1])
    return np.asarray(found.x)


def leave_out(prep: Any, Z: Any, keep: np.ndarray) -> Any:
    """Z (the fitted per-feature preprocessing's output) as it would be had each row carried only the features `keep`
    (rows x features) marks: a feature's columns depend on that feature alone, so the rest are set to what the
    preprocessing writes for an absent value (zeros, but for a number a scaler does not map to 0), without transforming
    the records again."""
    blocks = blocks_of(prep)
    owner = _block_of_columns(blocks, Z.shape[1])
    out = without(sparse.csr_matrix(Z), owner, keep)
    empty = prep.transform(np.array([_absent_row(prep)], dtype=object))
    absent = np.asarray(empty.todense() if sparse.issparse(empty) else empty).ravel()
    rows, cols, values = [], [], []
    for k, (start, stop, _) in enumerate(blocks):
        at = start + np.flatnonzero(absent[start:stop])
        gone = np.flatnonzero(~keep[:, k])
        if len(at) and len(gone):
            rows.append(np.repeat(gone, len(at)))
            cols.append(np.tile(at, len(gone)))
            values.append(np.tile(absent[at], len(gone)))
    if rows:
        out = out + sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=out.shape)
    return out


def _absent_row(prep: Any) -> list[Any]:
    """A record that carries no feature, as the records' matrix writes one (records.to_matrix)."""
    kinds = next(step for name, step, _ in prep.transformers_ if name == PRESENCE).kinds
    return [float("nan") if kind == "numeric" else "" if kind == "text" else ABSENT for kind in kinds]


class FeatureExperts(ClassifierMixin, BaseEstimator):
    """A linear SVM per feature over that feature's columns (`blocks`), fitted on the rows that carry it, summed; with
    `calibrate`, each expert weighted (`expert_weights_`, fitted on out-of-fold scores of whole rows and of rows with
    random features taken away, `subsets` copies) and the weights folded into `coef_`."""

    def __init__(self, C: float = 0.3, blocks: tuple[tuple[int, int, int], ...] = (), calibrate: bool = False, subsets: int = 2,
                 max_iter: int = 3000, random_state: int = 0):
        self.C = C
        self.blocks = blocks
        self.calibrate = calibrate
        self.subsets = subsets
        self.max_iter = max_iter
        self.random_state = random_state

    def _experts(self, Z: Any, y: np.ndarray, shared: dict[int, Any] | None = None) -> np.ndarray:
        """(classes, columns) weights: each feature's expert over its columns, its intercept on its presence column.
        `shared`: the experts of the few-column features, which do not depend on C, kept across fits on the same rows
        (a search over C refits only the text's experts)."""
        W = np.zeros((len(self.classes_), Z.shape[1]))
        flags = Z[:, [flag for _, _, flag in self.blocks]]
        flags = flags.toarray() if sparse.issparse(flags) else np.asarray(flags)
        for k, (start, stop, flag) in enumerate(self.blocks):
            carried = flags[:, k] > 0
            if stop == start or len(np.unique(y[carried])) < 2:
                continue  # nothing to learn from: the feature adds nothing to any class
            wide = stop - start > DUAL_COLUMNS
            if not wide and shared is not None and k in shared:
                expert = shared[k]
            else:
                part = Z[:, start:stop]
                if not carried.all():
                    part = part[carried]
                # a text's thousands of columns in the dual, at the C searched; a category's or a number's few in the primal
                # at OTHER_C, to a looser tolerance (measured on 16,000 reviews: a price's expert 18 s in the dual, 0.1 s in
                # the primal; a province's 1.7 s at tol 1e-4, 0.6 s at 1e-2; the words' 1.6 s in the dual, 7.7 s in the primal)
                expert = LinearSVC(C=self.C if wide else OTHER_C, class_weight="balanced", dual=wide, tol=1e-4 if wide else 1e-2,
                                   max_iter=self.max_iter, random_state=self.random_state).fit(part, y[carried])
                if not wide and shared is not None:
                    shared[k] = expert
            at = np.searchsorted(self.classes_, expert.classes_)
            coef, intercept = expert.coef_, expert.intercept_
            if coef.shape[0] == 1:  # two classes: one row, for the second
                coef, intercept = np.vstack([-coef[0], coef[0]]), np.array([-intercept[0], intercept[0]])
            W[at, start:stop] = coef
            W[at, flag] = intercept
            missing = np.setdiff1d(np.arange(len(self.classes_)), at)
            W[missing, flag] = -1.0  # a class never seen with this feature present: below every class it saw
        return W

    def fit(self, Z: Any, y: Any, shared: dict[int, Any] | None = None) -> FeatureExperts:
        """`shared`: see _experts (cross-validation passes one per fold)."""
        if not self.blocks:
            raise ValueError("FeatureExperts needs the preprocessing's blocks (sommelier_contract.experts.blocks_of)")
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        Z = Z.tocsr() if sparse.issparse(Z) else np.asarray(Z)  # rows and column ranges are cut from it: CSR
        if not self.calibrate:
            self.coef_, self.intercept_ = self._experts(Z, y, shared), np.zeros(len(self.classes_))
            return self
        codes = np.searchsorted(self.classes_, y)
        owner = _block_of_columns(self.blocks, Z.shape[1])
        rng = np.random.default_rng(self.random_state)
        # one fit on two thirds of the rows, whose scores on the last third fit the experts' weights, beside the final fit
        # on every row (liblinear releases the GIL: on 2 cores about the final fit's own time)
        splits = int(min(3, max(2, np.bincount(codes).min())))  # a class of 2 rows: halves, not thirds (no warning)
        folds = list(StratifiedKFold(splits, shuffle=True, random_state=self.random_state).split(np.zeros(len(y)), codes))[:1]
        weights = Parallel(n_jobs=2, prefer="threads")(delayed(self._experts)(Z[rows], y[rows])
                                                       for rows in [fit_rows for fit_rows, _ in folds] + [np.arange(len(y))])
        scores, truth = [], []
        for (_, held), Wk in zip(folds, weights, strict=False):
            held = np.sort(rng.permutation(held)[:CALIBRATION_ROWS])  # a random part of a large fold is enough for a few numbers
            part = Z[held]
            views = [part]
            for _ in range(self.subsets):  # each feature kept with a chance drawn per row: every size of subset occurs
                chance = rng.random(len(held))
                views.append(without(part, owner, rng.random((len(held), len(self.blocks))) < chance[:, None]))
            for view in views:  # each expert's scores apart: rows x experts x classes
                scores.append(np.stack([np.asarray(view[:, owner == k] @ Wk[:, owner == k].T) for k in range(len(self.blocks))], axis=1))
                truth.append(codes[held])
        self.expert_weights_ = _weights(np.concatenate(scores), np.concatenate(truth))
        self.coef_ = weights[-1] * np.where(owner >= 0, self.expert_weights_[np.maximum(owner, 0)], 0.0)[None, :]
        self.intercept_ = np.zeros(len(self.classes_))
        return self

    def decision_function(self, Z: Any) -> np.ndarray:
        return np.asarray(Z @ self.coef_.T) + self.intercept_

    def predict_proba(self, Z: Any) -> np.ndarray:
        scores = self.decision_function(Z)
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)

    def predict(self, Z: Any) -> np.ndarray:
        return self.classes_[self.decision_function(Z).argmax(axis=1)]


class ExpertsPipeline(Pipeline):
    """The preprocessing then FeatureExperts, which needs to know where each feature's columns are: `fit` tells it."""

    def fit(self, X: Any, y: Any = None, **params: Any) -> ExpertsPipeline:
        prep, model = self.steps[0][1], self.steps[-1][1]
        Z = prep.fit_transform(X, y)
        model.set_params(blocks=blocks_of(prep)).fit(Z, y)
        return self
