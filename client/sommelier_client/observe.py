"""Reading the Sommelier metrics back from CloudWatch: a summary and a chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sommelier_contract.metric_names import Metric, over_periods

NAMESPACE = "Sommelier"
# id -> (metric, dimensions, stat, label)
SERIES: dict[str, tuple[str, dict[str, str], str, str]] = {
    "requests": (Metric.REQUESTS, {"Route": "/predict"}, "Sum", "POST /predict requests"),
    "p50": (Metric.LATENCY, {"Route": "/predict"}, "p50", "latency p50 (ms)"),
    "p90": (Metric.LATENCY, {"Route": "/predict"}, "p90", "latency p90 (ms)"),
    "p99": (Metric.LATENCY, {"Route": "/predict"}, "p99", "latency p99 (ms)"),
    "errors5xx": (Metric.SERVER_ERROR, {}, "Average", "5xx rate"),
    "lowconf": (Metric.LOW_CONFIDENCE, {}, "Average", "low-confidence share"),
    "accuracy": (Metric.FEEDBACK_CORRECT, {}, "Average", "accuracy from feedback"),
}


def _whole(results: dict[str, Any], key: str, stat: str) -> float | None:
    """One window's value of SERIES[key] from its periods (an average queried as Sum and SampleCount)."""
    return over_periods(stat, results[f"w_{key}"]["Values"], results[f"n_{key}"]["Values"] if stat == "Average" else None)


def fetch(cloudwatch, hours: float, period: int = 60, now: datetime | None = None) -> dict[str, Any]:
    """Per-period series and whole-window values of SERIES, plus predictions per class and errors by type."""
    now = now or datetime.now(UTC)
    start = now - timedelta(hours=hours)
    whole = max(60, int(hours * 3600) // 60 * 60)
    queries = []
    for key, (name, dims, stat, _) in SERIES.items():
        metric = {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]}
        queries.append({"Id": f"s_{key}", "MetricStat": {"Metric": metric, "Period": period, "Stat": stat}})
        # the window still comes back as several clock-aligned periods: an average is a total over a count, a percentile the worst period's
        for wid, wstat in ((f"w_{key}", "Sum"), (f"n_{key}", "SampleCount")) if stat == "Average" else ((f"w_{key}", stat),):
            queries.append({"Id": wid, "MetricStat": {"Metric": metric, "Period": whole, "Stat": wstat}})
    for m in cloudwatch.list_metrics(Namespace=NAMESPACE, MetricName=Metric.PREDICTIONS)["Metrics"] + \
            cloudwatch.list_metrics(Namespace=NAMESPACE, MetricName=Metric.ERRORS)["Metrics"]:
        dims = {d["Name"]: d["Value"] for d in m["Dimensions"]}
        label = f"class {dims['Class']} ({dims.get('ModelVersion', '')})" if "Class" in dims else f"error {dims.get('ErrorType')}"
        queries.append({"Id": f"x{len(queries)}", "Label": label, "MetricStat": {"Metric": m, "Period": whole, "Stat": "Sum"}})
    for m in cloudwatch.list_metrics(Namespace=NAMESPACE, MetricName=Metric.FEATURE_DRIFT)["Metrics"]:  # model monitoring's verdicts
        feature = {d["Name"]: d["Value"] for d in m["Dimensions"]}.get("Feature", "?")
        queries.append({"Id": f"d{len(queries)}", "Label": feature, "MetricStat": {"Metric": m, "Period": whole, "Stat": "Maximum"}})
    for m in cloudwatch.list_metrics(Namespace=NAMESPACE, MetricName=Metric.PREDICTION_CONFIDENCE)["Metrics"]:
        version = {d["Name"]: d["Value"] for d in m["Dimensions"]}.get("ModelVersion", "?")
        queries.append({"Id": f"c{len(queries)}", "Label": f"mean confidence ({version})",
                        "MetricStat": {"Metric": m, "Period": period, "Stat": "Average"}})
    results: dict[str, Any] = {}
    for i in range(0, len(queries), 500):
        for r in cloudwatch.get_metric_data(MetricDataQueries=queries[i:i + 500], StartTime=start, EndTime=now)["MetricDataResults"]:
            results[r["Id"]] = r
    series = {k: sorted(zip(results[f"s_{k}"]["Timestamps"], results[f"s_{k}"]["Values"], strict=True)) for k in SERIES}
    totals = {k: _whole(results, k, SERIES[k][2]) for k in SERIES}
    counts = {r["Label"]: sum(r["Values"]) for r in results.values() if r["Id"].startswith("x") and r["Values"]}
    confidence = {r["Label"]: sorted(zip(r["Timestamps"], r["Values"], strict=True))
                  for r in results.values() if r["Id"].startswith("c") and r["Values"]}
    drifted = sorted(r["Label"] for r in results.values() if r["Id"].startswith("d") and r["Values"] and max(r["Values"]) >= 1)
    monitored = any(r["Id"].startswith("d") and r["Values"] for r in results.values())
    return {"start": start, "end": now, "series": series, "totals": totals, "counts": counts, "confidence": confidence,
            "drifted": drifted if monitored else None}


def summary(data: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, (_, _, _, label) in SERIES.items():
        value = data["totals"][key]
        if value is None:
            text = "no data"
        elif key in ("errors5xx", "lowconf", "accuracy"):
            text = f"{value:.1%}"
        elif key == "requests":
            text = f"{value:.0f}"
        else:
            text = f"{value:.1f}"
        rows.append((label, text))
    rows += [(label, f"{n:.0f}") for label, n in sorted(data["counts"].items())]
    drifted = data.get("drifted")
    rows.append(("drifted features (model monitoring)", "no monitoring pass in this window" if drifted is None else ", ".join(drifted) or "none"))
    return rows


def chart(data: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, share) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for key in ("p50", "p90", "p99"):
        points = data["series"][key]
        lat.plot([t for t, _ in points], [v for _, v in points], marker=".", label=SERIES[key][3])
    lat.set_ylabel("ms")
    lat.set_title(f"POST /predict, {data['start']:%Y-%m-%d %H:%M} to {data['end']:%H:%M} UTC")
    lat.legend(loc="upper left")
    for key in ("lowconf", "errors5xx", "accuracy"):
        points = data["series"][key]
        share.plot([t for t, _ in points], [v for _, v in points], marker=".", label=SERIES[key][3])
    for label, points in data["confidence"].items():
        share.plot([t for t, _ in points], [v for _, v in points], marker=".", linestyle="--", label=label)
    share.set_ylim(-0.05, 1.05)
    share.set_xlim(data["start"], data["end"])
    share.set_ylabel("share")
    share.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
