"""The benchmark report: a Markdown table and a PNG chart from latest.json."""

from __future__ import annotations

from pathlib import Path


def _row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def write(r: dict, out: Path) -> None:
    ws, up, cs = r["warm_single"], r["make_up"], r["cold_start"]
    lines = [
        f"Measured {r['when']} on {r['machine']['cpus']} CPUs, Python {r['machine']['python']} ({r['machine']['platform']}).",
        *([f"Training re-measured {r['training_when']} (`make bench BENCH_FLAGS=--training-only`)."] if r.get("training_when") else []),
        *([f"History re-measured {r['history_when']} (`make bench BENCH_FLAGS=--history-only`)."] if r.get("history_when") else []),
        "",
        _row("figure", "measured", "floor / context", "target"),
        _row("---", "---", "---", "---"),
        _row("warm single prediction, API Gateway -> Lambda -> DynamoDB (p50/p95/p99 ms)",
             f"{ws['api']['p50_ms']} / {ws['api']['p95_ms']} / {ws['api']['p99_ms']}",
             f"in-process handler, same emulator: {ws['in_process_floor']['p50_ms']} / {ws['in_process_floor']['p95_ms']} / "
             f"{ws['in_process_floor']['p99_ms']} (ratio p50 {ws['ratio_p50']}x)", "within 2x of the floor"),
    ]
    for b in r["batch"]:
        lines.append(_row(f"batch of {b['batch']} (p50 ms, rows/s)", f"{b['p50_ms']} ms, {b['rows_per_s']} rows/s", "",
                          "1000 within 50 ms" if b["batch"] == 1000 else ""))
    for c in r["concurrency"]:
        lines.append(_row(f"concurrency {c['concurrency']} (req/s, p50/p99 ms, 429s, errors)",
                          f"{c['req_per_s']} req/s, {c.get('p50_ms', '-')} / {c.get('p99_ms', '-')} ms, {c['throttled_429']} x 429, "
                          f"{c['errors']} errors", f"{c['requests']} requests on loopback", ""))
    lines += [
        _row("cold start: first invoke after a config update (health / predict, ms)",
             f"{cs['cold_invoke_health_ms']} / {cs['cold_invoke_predict_ms']}",
             f"fresh-process imports {cs['imports_in_fresh_process_ms']} ms; in-process import+load+first predict "
             f"{cs['in_process_import_load_first_predict_ms']} ms; warm invoke {cs['warm_invoke_health_ms']} ms", "within 1.5 s"),
        _row("make up, fresh / from stopped (s)", f"{up['fresh_s']} / {up['from_stopped_s']}", "dependencies installed", "from stopped within 15 s"),
    ]
    targets = {("reviews", 1_000): "within 15 s", ("numeric", 1_000_000): "within 60 s and 2 GiB"}
    for t in r["training"]:
        kind = t.get("kind", "numeric")
        measured = (f"{t['seconds']} s (push {t['push_seconds']} s), {t['peak_mib']} MiB peak; {t['winner']}, holdout accuracy "
                    f"{t['holdout_accuracy']}" if "seconds" in t else
                    f"not finished in {t['timed_out_after_s']} s" if "timed_out_after_s" in t else "failed")
        what = "reviews-like: text + categorical + numeric" if kind == "reviews" else "numeric wine-like"
        lines.append(_row(f"training, {t['rows']:,} rows, {what} (read from S3, compare, refit, evaluate, write)", measured,
                          ", ".join(f"{n} {v:.3f}" if isinstance(v, float) else f"{n} skipped" for n, v in t.get("candidates", {}).items()),
                          targets.get((kind, t["rows"]), "")))
    h = r.get("history") or {}
    for name, q in (h.get("queries") or {}).items():
        lines.append(_row(f"history read on {h['rows']:,} records: {name} (p50/p99 ms)", f"{q['p50_ms']} / {q['p99_ms']}",
                          f"GET /predictions through API Gateway; the emulator's slowest checkpoint {h.get('checkpoint_s_max')} s (in a forked child)",
                          "p99 under 1 s"))
    for name, seconds in r.get("repo", {}).items():
        lines.append(_row(name.replace("_", " "), f"{seconds} s", "make bench --fresh-clone / --make-test", ""))
    if r.get("profile_batch_1000"):
        lines += ["", "Where the time goes on the slowest path: the in-process handler, 3 requests of 1000 records "
                  "(cProfile, cumulative, our code and botocore):", "", "```text", *r["profile_batch_1000"], "```"]
    (out / "latest.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4.5))
    labels = ["p50", "p95", "p99"]
    x = range(3)
    a.bar([i - 0.2 for i in x], [ws["api"][f"{k}_ms"] for k in labels], 0.4, label="through API Gateway")
    a.bar([i + 0.2 for i in x], [ws["in_process_floor"][f"{k}_ms"] for k in labels], 0.4, label="in-process floor")
    a.set_xticks(list(x), labels)
    a.set_ylabel("ms")
    a.set_title("warm single prediction")
    a.legend()
    sizes = [bt["batch"] for bt in r["batch"]]
    b.plot(sizes, [bt["p50_ms"] for bt in r["batch"]], marker="o")
    b.set_xscale("log")
    b.set_xlabel("records per request")
    b.set_ylabel("p50 ms")
    b.set_title("batch latency")
    for kind in ("numeric", "reviews"):
        done = [t for t in r["training"] if "seconds" in t and t.get("kind", "numeric") == kind]
        c.plot([t["rows"] for t in done], [t["seconds"] for t in done], marker="o", label=kind)
    c.legend()
    c.set_xscale("log")
    c.set_yscale("log")
    c.set_xlabel("rows")
    c.set_ylabel("seconds")
    c.set_title("training time")
    fig.tight_layout()
    fig.savefig(out / "latest.png", dpi=100)
    plt.close(fig)
