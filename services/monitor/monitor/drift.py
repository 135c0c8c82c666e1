"""Model monitoring's statistics: recent predictions compared with the profile of what the model was trained on (its
baseline: sommelier_contract/baseline.py, written and signed with the model's artifacts).

Each feature is compared on independent units (one value per prediction; a text gives two: its length in tokens and
the share of its tokens the training text never used) with a test chosen by sample size, as Evidently chooses:
- up to SMALL values, a two-sample test against a sample of the training values: Kolmogorov-Smirnov for numbers, a
  chi-square goodness of fit on the training frequencies for categories. A test's false alarms are bounded by its
  level, split among the features (Bonferroni), so a sample drawn from the training distribution flags no feature in
  at least 95% of the runs;
- above SMALL, a distance with a fixed threshold (Wasserstein in training standard deviations, Jensen-Shannon for
  categories): on large samples every test's p-value is tiny for differences nobody cares about.
PSI on the training deciles (or categories) is reported beside every feature, as most teams read it.

Pure numpy and scipy: no scikit-learn, no pandas, so the monitor's function stays small.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from sommelier_contract.baseline import (
    Baseline,
    CategoricalProfile,
    Frequencies,
    NumericProfile,
    PredictionProfile,
    bins,
    is_missing,
    numbers_of,
    strings,
    text_measures,
    tokenized,
)
from sommelier_contract.records import bucket_of

SMALL = 1000  # up to this many values a test decides, above it a distance
ALPHA = 0.05  # the family-wise false-alarm rate, divided among the tests
WASSERSTEIN = 0.1  # in training standard deviations
JENSEN_SHANNON = 0.1
PSI_SHIFT = 0.2  # the usual rule of thumb: above it, a significant shift
MIN_PREDICTIONS = 30  # fewer: "not enough data", never a verdict
_EPS = 1e-4


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e, a = np.clip(expected, _EPS, None), np.clip(actual, _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _js(expected: np.ndarray, actual: np.ndarray) -> float:
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(expected, actual, base=2))


def _numeric_test(base: NumericProfile, x: np.ndarray, alpha: float, what: str) -> dict[str, Any]:
    from scipy import stats

    present = x[~np.isnan(x)]
    n = len(present)
    shares = bins(present, list(base.edges)) / max(n, 1)
    out: dict[str, Any] = {"measure": what, "n": n, "psi": round(_psi(np.asarray(base.shares), shares), 4),
                           "mean": float(present.mean()) if n else None}
    reference = np.asarray(base.sample)
    if n == 0:
        return {**out, "test": "none", "drifted": False, "reason": "no values"}
    if n <= SMALL:
        result = stats.ks_2samp(present, reference)
        return {**out, "test": "kolmogorov-smirnov", "statistic": round(float(result.statistic), 4), "p_value": float(result.pvalue),
                "threshold": alpha, "drifted": bool(result.pvalue < alpha),
                "reason": f"{n} values (at most {SMALL}): a two-sample test against {len(reference)} training values, "
                          f"level {alpha:.4g} (5% split among the tests)"}
    scale = base.std or 1.0
    distance = float(stats.wasserstein_distance(present, reference)) / scale
    return {**out, "test": "wasserstein", "statistic": round(distance, 4), "threshold": WASSERSTEIN, "drifted": bool(distance >= WASSERSTEIN),
            "reason": f"{n} values (more than {SMALL}, where any test flags trivial differences): Wasserstein distance "
                      f"in training standard deviations"}


def _category_vectors(base: Frequencies, values: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    counts = Counter(values)
    names = list(base.shares)
    expected = np.array([*base.shares.values(), base.other])
    actual = np.array([*(counts.get(k, 0) for k in names), len(values) - sum(counts.get(k, 0) for k in names)], dtype=float)
    return [*names, "(other)"], expected, actual


def _categorical_test(base: Frequencies, values: list[str], alpha: float, rows: int) -> dict[str, Any]:
    from scipy import stats

    n = len(values)
    names, expected, actual = _category_vectors(base, values)
    shares = actual / max(n, 1)
    out: dict[str, Any] = {"measure": "categories", "n": n, "psi": round(_psi(expected, shares), 4)}
    if n == 0:
        return {**out, "test": "none", "drifted": False, "reason": "no values"}
    if n <= SMALL:
        # a two-sample test (the training frequencies are a sample too): categories pooled, rarest first, until each
        # group expects 5 values on both sides (the test's own condition)
        ref = expected * rows
        order = np.argsort(-expected)
        groups: list[list[float]] = []
        acc = [0.0, 0.0]
        for i in order:
            acc = [acc[0] + ref[i], acc[1] + actual[i]]
            share = (acc[0] + acc[1]) / (rows + n)
            if share * min(rows, n) >= 5:
                groups.append(acc)
                acc = [0.0, 0.0]
        if acc[0] or acc[1]:
            if groups:
                groups[-1] = [groups[-1][0] + acc[0], groups[-1][1] + acc[1]]
            else:
                groups = [acc]
        if len(groups) < 2:
            return {**out, "test": "none", "drifted": False, "reason": f"{n} values are too few for a chi-square test on these categories"}
        result = stats.chi2_contingency(np.array(groups).T, correction=False)
        return {**out, "test": "chi-square", "statistic": round(float(result.statistic), 4), "p_value": float(result.pvalue),
                "threshold": alpha, "drifted": bool(result.pvalue < alpha),
                "reason": f"{n} values (at most {SMALL}): chi-square test of {n} values against {rows} training values in "
                          f"{len(groups)} groups (rare categories pooled to 5 expected each), level {alpha:.4g}"}
    # categories under 1% in training pooled: a sample's many rare categories would otherwise add a distance of their own
    common = expected >= 0.01
    distance = _js(np.append(expected[common], expected[~common].sum()), np.append(shares[common], shares[~common].sum()))
    return {**out, "test": "jensen-shannon", "statistic": round(distance, 4), "threshold": JENSEN_SHANNON,
            "drifted": bool(distance >= JENSEN_SHANNON),
            "reason": f"{n} values (more than {SMALL}): Jensen-Shannon distance of the category frequencies "
                      f"(categories under 1% in training pooled)"}


def _tests_of(baseline: Baseline) -> int:
    return sum(2 if b.type == "text" else 1 for b in baseline.features.values())


def compare_features(baseline: Baseline, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per feature: its tests (see the module), PSI, and whether it drifted."""
    alpha = ALPHA / max(_tests_of(baseline), 1)
    out = []
    for name, base in baseline.features.items():
        # a feature a record left out is absent, not missing: the caller did not know it (the model answered without it);
        # the tests and the missing rate read the records that carry it, and the absent share is said beside them
        values = [r[name] for r in records if name in r]
        entry: dict[str, Any] = {"feature": name, "type": base.type, "baseline_missing": round(base.missing, 4),
                                 "missing": round(sum(map(is_missing, values)) / max(len(values), 1), 4),
                                 "absent": round(1 - len(values) / max(len(records), 1), 4)}
        if isinstance(base, NumericProfile):
            if not base.n:
                out.append({**entry, "drifted": False, "tests": [], "psi": None, "note": "no training values"})
                continue
            tests = [_numeric_test(base, numbers_of(values), alpha, "values")]
        elif isinstance(base, CategoricalProfile):
            tests = [_categorical_test(base, [v for v in strings(values) if v is not None], alpha, baseline.rows)]
        else:
            docs = tokenized(strings(values))
            lengths, unseen = text_measures(docs, set(base.vocabulary))
            counts = Counter(w for words in docs for w in words)
            tests = [_numeric_test(base.length, lengths, alpha, "length in tokens"),
                     _numeric_test(base.unseen, unseen, alpha, "share of words the training text never used")]
            total = max(sum(counts.values()), 1)
            top = np.array([counts.get(k, 0) / total for k in base.tokens])
            entry["token_psi"] = round(_psi(np.array([*base.tokens.values(), base.other]), np.append(top, 1 - top.sum())), 4)
            entry["unseen_words"] = round(float(np.nanmean(unseen)), 4) if np.any(~np.isnan(unseen)) else None
            entry["baseline_unseen_words"] = round(float(np.mean(base.unseen.sample)), 4) if base.unseen.sample else 0.0
        psi = max((t["psi"] for t in tests), default=0.0)
        out.append({**entry, "psi": psi, "drifted": any(t["drifted"] for t in tests), "tests": tests,
                    "score": max((_score(t) for t in tests), default=0.0)})
    return out


def _score(test: dict[str, Any]) -> float:
    """How far a test went towards flagging its feature, on one scale for every test: 1 is its threshold (a distance
    over its threshold; a p-value's logarithm over its level's), capped at 10."""
    if test.get("test") in (None, "none"):
        return 0.0
    if "p_value" in test:
        return round(min(10.0, math.log(max(test["p_value"], 1e-300)) / math.log(test["threshold"])), 4)
    return round(min(10.0, test["statistic"] / test["threshold"]), 4)


def _more_than(count: int, n: int, rate: float, alpha: float) -> bool:
    """Whether `count` of `n` is significantly more than `rate` would give (a one-sided binomial test)."""
    from scipy.stats import binomtest

    return bool(n > 0 and count > rate * n and binomtest(count, n, min(max(rate, 1e-6), 1.0), alternative="greater").pvalue < alpha)


def _outside_p(count: int, n: int, m: int) -> float:
    """How likely `count` or more of `n` new values fall outside the range of `m` training values when all come from one
    distribution: the values are exchangeable, so (an upper bound) the chance that the `count` most extreme of all n + m
    are new ones, on either side."""
    if count <= 0:
        return 1.0
    log_p = math.lgamma(n + 1) - math.lgamma(n - count + 1) - math.lgamma(n + m + 1) + math.lgamma(n + m - count + 1)
    return min(1.0, (count + 1) * math.exp(log_p))


def quality(baseline: Baseline, records: list[dict[str, Any]], drift: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Data-quality checks: missing rates, values outside the training range, unseen categories, unfamiliar text,
    fields the model does not know. A check is violated when what it saw is both significantly more than training
    would give (a binomial test, its level split among the checks) and large enough to matter."""
    n = len(records)
    rows = max(baseline.rows, 1)
    checks = []
    names = set(baseline.features)
    alpha = ALPHA / max(2 * len(names), 1)
    by_feature = {d["feature"]: d for d in drift}
    for name, base in baseline.features.items():
        d = by_feature[name]
        values = [r[name] for r in records if name in r]
        missing = sum(map(is_missing, values))
        checks.append({"check": "missing", "feature": name, "value": d["missing"], "baseline": d["baseline_missing"],
                       "violated": d["missing"] - d["baseline_missing"] > 0.1
                       and _more_than(missing, len(values), max(base.missing, 0.5 / rows), alpha),
                       "message": f"{d['missing']:.0%} of values missing (training: {d['baseline_missing']:.0%})"})
        if d["absent"]:  # what callers leave out is theirs to leave out: said, never a violation
            checks.append({"check": "absent", "feature": name, "value": d["absent"], "baseline": 0.0, "violated": False,
                           "message": f"{d['absent']:.0%} of records left it out (answered without it)"})
        if isinstance(base, NumericProfile) and base.n and base.min is not None and base.max is not None:
            x = numbers_of(values)
            x = x[~np.isnan(x)]
            outside = int(np.sum((x < base.min) | (x > base.max)))
            share = outside / max(len(x), 1)
            # a new value falls outside the range of m training values with probability 2 / (m + 1)
            checks.append({"check": "out_of_range", "feature": name, "value": round(share, 4), "baseline": round(2 / (base.n + 1), 4),
                           "violated": bool(share > 0.01 and _outside_p(outside, len(x), base.n) < alpha),
                           "message": f"{outside} value(s) outside the training range {base.min:g} to {base.max:g}"})
        elif isinstance(base, CategoricalProfile):
            known = set(base.known)
            present = [v for v in strings(values) if v is not None]
            unseen = Counter(v for v in present if v not in known)
            share = sum(unseen.values()) / max(len(present), 1)
            expected = base.singletons / max(base.n, 1)  # Good-Turing: how often training met a category once
            checks.append({"check": "unseen_category", "feature": name, "value": round(share, 4), "baseline": round(expected, 4),
                           "violated": base.known_complete and share - expected > 0.05
                           and _more_than(sum(unseen.values()), len(present), max(expected, 0.5 / rows), alpha),
                           # the examples are callers' inputs: the CLI shows them to operators, the API leaves them out
                           "message": f"{share:.0%} of values are categories training never saw",
                           "examples": [k for k, _ in unseen.most_common(3)]})
        elif base.type == "text" and d.get("unseen_words") is not None:
            rise = d["unseen_words"] - d["baseline_unseen_words"]
            checks.append({"check": "unfamiliar_text", "feature": name, "value": d["unseen_words"], "baseline": d["baseline_unseen_words"],
                           "violated": bool(rise > 0.2),
                           "message": f"{d['unseen_words']:.0%} of words are ones the training text never used "
                                      f"(training: {d['baseline_unseen_words']:.0%})"})
    strays = Counter(k for r in records for k in r if k not in names)
    checks.append({"check": "schema", "feature": None, "value": round(sum(strays.values()) / max(n, 1), 4), "baseline": 0.0,
                   "violated": bool(strays),
                   "message": "every record has the model's fields" if not strays else
                   "fields the model does not know: " + ", ".join(f"{k} ({c})" for k, c in strays.most_common(5))})
    return checks


def compare_predictions(baseline: Baseline, labels: list[str], confidence: list[float]) -> dict[str, Any]:
    """The class mix and the confidence against the holdout's, and the accuracy they suggest before any label."""
    base = baseline.predictions
    alpha = ALPHA / 2
    names = list(base.classes)
    mix = _categorical_test(Frequencies(n=base.rows, shares=base.classes, other=0.0), labels, alpha, base.rows)
    conf = np.asarray(confidence, dtype=float)
    conf_test = _numeric_test(base.confidence, conf, alpha, "confidence")
    counts = Counter(labels)
    return {"classes": {c: round(counts.get(c, 0) / max(len(labels), 1), 4) for c in names},
            "baseline_classes": {c: round(v, 4) for c, v in base.classes.items()},
            "class_mix": mix, "confidence": conf_test,
            "mean_confidence": round(float(conf.mean()), 4) if len(conf) else None,
            "drifted": mix["drifted"] or conf_test["drifted"],
            "estimated_accuracy": estimate_accuracy(base, conf)}


def estimate_accuracy(base: PredictionProfile, confidence: np.ndarray) -> dict[str, Any] | None:
    """An estimate before labels: the holdout's accuracy at each confidence level, weighted by how many recent
    predictions fall at that level (each level's rate pulled towards the overall one when it had few holdout rows)."""
    calibration, overall = base.calibration, base.accuracy
    if overall is None or not len(confidence):
        return None
    rows, correct = np.asarray(calibration.rows, dtype=float), np.asarray(calibration.correct, dtype=float)
    rate = (correct + 2 * overall) / (rows + 2)
    level = np.searchsorted(calibration.edges, confidence, side="right")
    return {"value": round(float(rate[level].mean()), 4), "holdout_accuracy": round(overall, 4),
            "method": "an estimate, not a measurement: the holdout's accuracy at each confidence level, weighted by the "
                      "confidence of recent predictions; it holds while confidence means what it meant on the holdout"}


def accuracy(outcomes: list[tuple[str, bool]]) -> dict[str, Any]:
    """Accuracy from feedback with a 95% Wilson interval, per day (the day of the prediction) and overall."""
    from scipy.stats import binomtest

    def one(values: list[bool]) -> dict[str, Any]:
        k, n = sum(values), len(values)
        interval = binomtest(k, n).proportion_ci(method="wilson")
        return {"n": n, "correct": k, "accuracy": round(k / n, 4), "low": round(interval.low, 4), "high": round(interval.high, 4)}

    days: dict[str, list[bool]] = {}
    for day, right in outcomes:
        days.setdefault(day, []).append(right)
    return {"overall": one([r for _, r in outcomes]) if outcomes else None,
            "days": [{"day": d, **one(v)} for d, v in sorted(days.items())]}


def compare_segments(baseline: Baseline, segments: list[dict[str, Any]], records: list[dict[str, Any]],
                     outcomes: list[tuple[dict[str, Any], bool]]) -> list[dict[str, Any]]:
    """Per segment of the dataset spec: the mix of its buckets against training's, and accuracy from feedback per bucket."""
    out = []
    stored = baseline.segments
    alpha = ALPHA / max(len(stored), 1)
    for segment in segments:
        base = stored.get(segment["name"])
        if base is None:
            continue
        buckets = [b for b in (bucket_of(segment, r.get(segment["feature"])) for r in records) if b is not None]
        mix = _categorical_test(base, buckets, alpha, base.n)
        labelled: dict[str, list[bool]] = {}
        for record, right in outcomes:
            bucket = bucket_of(segment, record.get(segment["feature"]))
            if bucket is not None:
                labelled.setdefault(bucket, []).append(right)
        counts = Counter(buckets)
        out.append({"segment": segment["name"], "feature": segment["feature"], "drifted": mix["drifted"], "mix": mix,
                    "buckets": [{"bucket": b, "share": round(counts.get(b, 0) / max(len(buckets), 1), 4),
                                 "baseline_share": round(base.shares.get(b, 0.0), 4),
                                 "feedback": len(labelled.get(b, [])),
                                 "accuracy": round(sum(labelled[b]) / len(labelled[b]), 4) if labelled.get(b) else None}
                                for b in sorted(set(counts) | set(base.shares) | set(labelled))]})
    return out
