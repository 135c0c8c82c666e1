"""Model monitoring for people: run the monitoring function, print its report as tables, draw it as a chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tabulate import tabulate

from sommelier_contract.monitoring import DriftTest, Report


class MonitorError(Exception):
    """The monitoring function failed or refused the request; the message says why."""


def invoke(lam, function_name: str, since: str | None) -> Report:
    """One monitoring pass by the stack's own function (the one its schedule runs); its report."""
    resp = lam.invoke(FunctionName=function_name, Payload=json.dumps({"trigger": "cli", **({"since": since} if since else {})}))
    report = json.loads(resp["Payload"].read() or b"null")
    if resp.get("FunctionError") or not isinstance(report, dict):
        message = report.get("errorMessage") if isinstance(report, dict) else report
        raise MonitorError(f"the monitoring function failed: {message} (its log says more: make logs)")
    if report.get("status") == "bad request":
        raise MonitorError(report["message"])
    try:
        return Report.parse(report)
    except ValueError as err:
        raise MonitorError(f"the monitoring function answered with something that is not a report: {err}") from None


def _test(t: DriftTest) -> str:
    if not t.ran:
        return t.reason
    p = f", p={t.p_value:.2g}" if t.p_value is not None else ""
    return f"{t.test} {t.statistic or 0:g}{p} (threshold {t.threshold or 0:.3g})"


def feature_rows(report: Report) -> list[list[Any]]:
    rows = []
    for f in report.features:
        tests = "; ".join(f"{t.measure}: {_test(t)}" if f.type == "text" else _test(t) for t in f.tests)
        rows.append([f.feature, f.type, "DRIFTED" if f.drifted else "ok", "" if f.psi is None else f"{f.psi:.3f}",
                     f"{f.missing:.0%} ({f.baseline_missing:.0%})", tests])
    return rows


def text(report: Report) -> str:
    """The report as a person reads it: what was compared, the verdict, then a table per part."""
    model = report.model
    lines = [f"monitoring report {report.at}: {report.status}",
             f"{report.message}"]
    if model:
        lines.append(f"model {model.version} ({model.family}, dataset {model.dataset}), "
                     f"predictions since {report.window.since} ({report.window.hours:.4g} h): {report.predictions}"
                     + (" (a sample: the cap was reached)" if report.sampled else ""))
    if report.left_out:
        lines.append("left out (other models' predictions: a model is compared only with its own baseline): "
                     + ", ".join(f"{v} ({n})" for v, n in report.left_out.items()))
    if report.features:
        lines += ["", tabulate(feature_rows(report), headers=["feature", "type", "drift", "PSI", "missing (training)", "test"])]
    if report.quality:
        lines += ["", f"data quality: {len(report.violations)} violation(s)"]
        lines += [f"  {q.check} {q.feature or ''}: {q.message}"
                  + (f" (e.g. {', '.join(map(repr, q.examples))})" if q.examples else "") for q in report.violations]
    pred = report.prediction_drift
    if pred:
        mix = ", ".join(f"{c} {s:.0%} (holdout {pred.baseline_classes.get(c, 0):.0%})" for c, s in pred.classes.items())
        lines += ["", f"predictions: {'DRIFTED' if pred.drifted else 'as on the holdout'}; class mix {mix}; "
                      f"mean confidence {pred.mean_confidence}"]
        if pred.estimated_accuracy:
            est = pred.estimated_accuracy
            lines.append(f"estimated accuracy {est.value:.1%} (holdout {est.holdout_accuracy:.1%}); {est.method}")
    days = report.accuracy.days if report.accuracy else ()
    if days:
        lines += ["", "accuracy from feedback (95% interval):",
                  tabulate([[d.day, d.n, f"{d.accuracy:.1%}", f"{d.low:.1%} to {d.high:.1%}"] for d in days],
                           headers=["day of prediction", "labels", "accuracy", "interval"])]
    for s in report.segments:
        lines += ["", f"segment {s.segment} ({s.feature}): {'DRIFTED' if s.drifted else 'as in training'}",
                  tabulate([[b.bucket, f"{b.share:.0%}", f"{b.baseline_share:.0%}", b.feedback,
                             "" if b.accuracy is None else f"{b.accuracy:.0%}"] for b in s.buckets],
                           headers=["bucket", "share", "training", "labels", "accuracy"])]
    if report.retraining:
        lines += ["", f"retraining: {'started' if report.retraining.started else 'not started'}: {report.retraining.why}"]
    return "\n".join(lines)


def chart(report: Report, path: Path) -> Path:
    """Three panels: PSI per feature against the usual 0.2 line (drifted features in red), the class mix beside the
    holdout's, and accuracy from feedback per day with its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (features, classes, days) = plt.subplots(1, 3, figsize=(15, 4.8), gridspec_kw={"width_ratios": [2, 1, 1.4]})
    found = report.features
    if found:
        names = [f.feature for f in found]
        features.barh(names, [f.psi or 0 for f in found], color=["#c0392b" if f.drifted else "#5d8aa8" for f in found])
        features.axvline(0.2, color="#555", linestyle="--", linewidth=1, label="PSI 0.2 (a significant shift)")
        features.invert_yaxis()
        features.legend(loc="lower right", fontsize=8)
    features.set_title("drift per feature (red: its test flagged it)" if found else report.message[:70], fontsize=10)
    features.set_xlabel("PSI against training")
    pred = report.prediction_drift
    if pred:
        labels = list(pred.classes)
        x = range(len(labels))
        classes.bar([i - 0.2 for i in x], [pred.baseline_classes.get(c, 0) for c in labels], width=0.4, label="holdout", color="#aaa")
        classes.bar([i + 0.2 for i in x], [pred.classes[c] for c in labels], width=0.4, label="recent", color="#5d8aa8")
        classes.set_xticks(list(x), labels, rotation=30, ha="right", fontsize=8)
        classes.legend(fontsize=8)
    classes.set_title("class mix", fontsize=10)
    accuracy = report.accuracy.days if report.accuracy else ()
    if accuracy:
        xs = [d.day for d in accuracy]
        ys = [d.accuracy for d in accuracy]
        days.errorbar(xs, ys, yerr=[[y - d.low for y, d in zip(ys, accuracy, strict=True)],
                                    [d.high - y for y, d in zip(ys, accuracy, strict=True)]], marker="o", capsize=3)
        holdout = report.model.holdout_accuracy if report.model else None
        if holdout:
            days.axhline(holdout, color="#555", linestyle="--", linewidth=1, label="holdout")
            days.legend(fontsize=8)
        days.tick_params(axis="x", rotation=30, labelsize=8)
    days.set_ylim(0, 1.05)
    days.set_title("accuracy from feedback per day (95% interval)" if accuracy else "accuracy: no feedback yet", fontsize=10)
    fig.suptitle(f"monitoring {report.at}: {report.message[:110]}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
