"""The benchmark report: a Markdown table and a PNG chart from latest.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def floor_sum(r: dict, size: str) -> tuple[float, dict[str, float]]:
    """The floor of a request of `size` records: its parts measured alone (bench/floors.py), and their sum."""
    parts = r["floors"]["parts"][size]
    named = {"API Gateway + Lambda (trivial function)": r["floors"]["transport"][size], "validate + predict": parts["predict_ms"],
             "record (DynamoDB)": parts["record_ms"],
             # the api sink hands its metrics to a buffer (off the path since issue 26); older results timed PutMetricData here
             ("metrics (to the buffer)" if "metrics_sent_ms" in parts else "metrics (PutMetricData)"): parts["metrics_ms"]}
    return round(sum(named.values()), 1), named


def headline(r: dict) -> list[dict]:
    """The issue's four figures: measured, floor, peer, target, met."""
    ws, cs, peer = r["warm_single"], r["cold_start"], r.get("peer") or {}
    batch = next(b for b in r["batch"] if b["batch"] == 1000)
    c16 = next(c for c in r["concurrency"] if c["concurrency"] == 16)
    single_floor, _ = floor_sum(r, "1")
    batch_floor, _ = floor_sum(r, "1000")
    burst = r.get("first_burst") or c16
    cold = [(f.get("cold_onnx") or f["cold_pipeline"])["total_ms"] for f in r.get("families") or [] if "error" not in f]
    peer_of = {"single": peer.get("single_p50_ms"), "batch": peer.get("batch_1000_p50_ms")}
    return [
        {"figure": "warm single prediction, p50 ms", "measured": ws["api"]["p50_ms"], "floor": single_floor,
         "peer": peer_of["single"], "target": "within 2.5x of the peer",
         "met": bool(peer_of["single"]) and ws["api"]["p50_ms"] <= 2.5 * peer_of["single"]},
        {"figure": "batch of 1,000, p50 ms", "measured": batch["p50_ms"], "floor": batch_floor, "peer": peer_of["batch"],
         "target": "within 1.5x of the peer", "met": bool(peer_of["batch"]) and batch["p50_ms"] <= 1.5 * peer_of["batch"]},
        _first_burst(r, burst, peer),
        _cold_start(cs),
        {"figure": "make up from stopped, s" + (" (median of 5)" if r.get("first_bursts") else ""), "measured": r["make_up"]["from_stopped_s"],
         "floor": None, "peer": None, "target": "within 10 s", "met": r["make_up"]["from_stopped_s"] <= 10},
    ] + _big_cold(r) + ([{"figure": f"cold start, slowest of {len(cold)} model families (a new worker's imports, load, first predict), ms",
           "measured": max(cold), "floor": None, "peer": None, "target": "within 500 ms", "met": max(cold) <= 500}] if cold else [])


def _big_cold(r: dict) -> list[dict]:
    """Issue 39: the big model's first predict on a new worker within 2x the wine model's, both through the stack in one
    run (the peer column holds the wine model's)."""
    big = ((r.get("big_champion") or {}).get("cold_start") or {}).get("cold_invoke_predict_ms")
    small = r["cold_start"].get("cold_invoke_predict_ms")
    if not (big and small):
        return []
    return [{"figure": f"cold start of the big model ({r['big_champion'].get('onnx_mib')} MiB ONNX, 130,000 rows), ms; peer: the "
                       "wine model's", "measured": big, "floor": None, "peer": small, "target": "within 2x of the small model's",
             "met": big <= 2 * small}]


def _first_burst(r: dict, burst: dict, peer: dict) -> dict:
    """Issue 39: the first burst after make up, five runs each after make up from stopped, within 2x the peer's own first
    burst in every one (the worst run is shown). Older results: one run, against 250 ms."""
    runs = r.get("first_bursts") or []
    peer_burst = peer.get("first_burst_16_p99_ms")
    if runs and peer_burst:
        met = sum((b.get("p99_ms") or 1e9) <= 2 * peer_burst for b in runs)
        floor = ((r.get("floors") or {}).get("transport") or {}).get("burst_16_p99")  # the trivial function's burst, workers warm
        return {"figure": f"first burst after make up, concurrency 16, p99 ms (worst of {len(runs)} runs; within 2x in {met} of them)",
                "measured": burst.get("p99_ms"), "floor": floor, "peer": peer_burst, "target": "within 2x of the peer's first burst, 5 of 5",
                "met": met == len(runs) == 5}
    return {"figure": ("first burst after make up, concurrency 16, p99 ms" if r.get("first_burst") else "concurrency 16 after make up, p99 ms"),
            "measured": burst.get("p99_ms"), "floor": None, "peer": peer.get("concurrency_16_p99_ms"), "target": "within 250 ms",
            "met": (burst.get("p99_ms") or 1e9) <= 250}


def _cold_start(cs: dict) -> dict:
    """Issue 39: the first predict on a new worker (median of five) within 1.5x a fresh process's cold start of the same
    handler and model (spawn -> first answer); the floor is the emulator's trivial function's cold start. Older results:
    one run, against 500 ms."""
    fresh = (cs.get("fresh_process") or {}).get("wall_ms")
    if fresh:
        return {"figure": f"cold start, first predict on a new worker, ms (median of {len(cs['cold_invoke_predict_runs_ms'])}; "
                          "peer: a fresh process)", "measured": cs["cold_invoke_predict_ms"], "floor": cs["emulator_trivial_cold_ms"],
                "peer": fresh, "target": "within 1.5x of a fresh process", "met": cs["cold_invoke_predict_ms"] <= 1.5 * fresh}
    return {"figure": "cold start, first predict on a new worker, ms", "measured": cs["cold_invoke_predict_ms"], "floor": None, "peer": None,
            "target": "within 500 ms", "met": cs["cold_invoke_predict_ms"] <= 500}


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def _yes(met: bool) -> str:
    return "yes" if met else "**no**"


def headline_row(h: dict) -> str:
    """One of headline()'s figures as a row: measured, floor and peer with the ratios to each, target, met."""
    return _row(h["figure"], h["measured"], h["floor"] if h["floor"] is not None else "-", _ratio(h["measured"], h["floor"]),
                h["peer"] if h["peer"] is not None else "-", _ratio(h["measured"], h["peer"]), h["target"], _yes(h["met"]))


def champion_rows(r: dict) -> list[str]:
    """The champions through the stack, each promoted on a stack of its own (bench/run.py's CHAMPIONS): the real-text
    family, and the big model, whose cold start issue 39 holds within 2x the wine model's (measured in the same run)."""
    out: list[str] = []
    small_cold = (r.get("cold_start") or {}).get("cold_invoke_predict_ms")
    for key in ("text_champion", "big_champion"):
        t = r.get(key)
        if not t:
            continue
        what = t.get("what") or "the real-text family, 1,000 reviews-like rows"
        if "error" in t:
            out += ["", f"{what} through the stack: failed: " + t["error"].replace("\n", " ")]
            continue
        peer = t.get("peer") or {}
        burst, single, batch, cold = t["first_burst"], t["warm_single"], t["batch_1000"], t.get("cold_start")
        size = f"; model.onnx {t['onnx_mib']} MiB" if t.get("onnx_mib") else ""
        trained = f"; pushed in {t['push_s']} s, trained in {t['train_s']} s" if "train_s" in t else ""
        out += ["", f"The champion of {what} through the stack, on a stack of its own ({t['family']}, served through "
                f"`{t['serving'].get('runtime')}`{size}{trained}), the peer on the same model.", "",
                _row("figure", "measured", "peer", "vs peer", "target", "met"), _row(*["---"] * 6),
                _row("make up from stopped, s", t["make_up_from_stopped_s"], "-", "-", "within 10 s", _yes(t["make_up_from_stopped_s"] <= 10)),
                _row("first burst after make up, concurrency 16, p99 ms", burst.get("p99_ms"), peer.get("first_burst_16_p99_ms", "-"),
                     _ratio(burst.get("p99_ms"), peer.get("first_burst_16_p99_ms")), "within 2x of the peer's first burst",
                     _yes(bool(peer.get("first_burst_16_p99_ms")) and (burst.get("p99_ms") or 1e9) <= 2 * peer["first_burst_16_p99_ms"])),
                _row("warm single prediction, p50 ms", single["p50_ms"], peer.get("single_p50_ms", "-"),
                     _ratio(single["p50_ms"], peer.get("single_p50_ms")), "within 2.5x of the peer",
                     _yes(bool(peer.get("single_p50_ms")) and single["p50_ms"] <= 2.5 * peer["single_p50_ms"])),
                _row("batch of 1,000, p50 ms", batch["p50_ms"], peer.get("batch_1000_p50_ms", "-"),
                     _ratio(batch["p50_ms"], peer.get("batch_1000_p50_ms")), "within 1.5x of the peer",
                     _yes(bool(peer.get("batch_1000_p50_ms")) and batch["p50_ms"] <= 1.5 * peer["batch_1000_p50_ms"]))]
        if cold:
            fresh = cold["fresh_process"]["wall_ms"]
            out.append(_row(f"cold start, first predict on a new worker, ms (median of {len(cold['cold_invoke_predict_runs_ms'])}; "
                            "peer: a fresh process)", cold["cold_invoke_predict_ms"], fresh, _ratio(cold["cold_invoke_predict_ms"], fresh),
                            "within 1.5x of a fresh process", _yes(cold["cold_invoke_predict_ms"] <= 1.5 * fresh)))
            if key == "big_champion" and small_cold:
                out.append(_row("cold start vs the wine model's, through the stack, ms", cold["cold_invoke_predict_ms"],
                                f"wine model {small_cold}", _ratio(cold["cold_invoke_predict_ms"], small_cold),
                                "within 2x of the small model's", _yes(cold["cold_invoke_predict_ms"] <= 2 * small_cold)))
    return out


def cpu_line(r: dict) -> list[str]:
    """bench/cpu.py's split: CPU ms one request cost each group of processes at concurrency 16."""
    c = dict(r.get("cpu_per_request_c16") or {})
    if not c:
        return []
    total, ceiling, n = c.pop("total_ms_per_request"), c.pop("ceiling_req_per_s"), c.pop("requests")
    trivial = r.get("cpu_per_request_c16_trivial") or {}
    alone = (f" The emulator alone (the constant function behind its own API, {trivial['requests']} requests): "
             f"{trivial['total_ms_per_request']:g} ms a request in all, at most {trivial['ceiling_req_per_s']} a second."
             if trivial else "")
    return [f"\nCPU one request cost at concurrency 16 ({n} requests, /proc): " + ", ".join(f"{k} {v:g} ms" for k, v in c.items())
            + f"; {total:g} ms in all, so this machine's cores allow at most {ceiling} requests a second (the first burst's "
            "bound: 16 requests in flight share them)." + alone]


def snapstart_rows(r: dict) -> list[str]:
    """Issue 51's targets, each beside its reference in the same run: a worker forked for a request, the first bursts
    against the warm single, a newly published version's first request, make up from stopped, the predictor's memory after
    the burst, and the warm single against its floor (so no ratio is met by a slower denominator)."""
    snap, runs = r.get("snapstart"), r.get("first_bursts") or []
    if not snap or not runs:
        return []
    single = r["warm_single"]["api"]["p50_ms"]
    floor, _ = floor_sum(r, "1")
    restored, new = snap["restored"], snap["new_version"]
    ratios = [round((b.get("p99_ms") or 1e9) / single, 1) for b in runs]
    ups = [b["make_up_from_stopped_s"] for b in runs]
    pss = [(b.get("predictor_memory_after") or {}).get("pss_mib") for b in runs]
    before = ", ".join(f"{(b.get('workers_before') or {}).get('snapshots')}+{(b.get('workers_before') or {}).get('forks')}" for b in runs)
    rows = [
        ("a worker forked for a request answers it, ms (worst of "
         f"{len(restored['restored_runs_ms'])}; warm {restored['warm_p50_ms']} ms in the same run)",
         restored["restored_first_ms"]["max"], "within 100 ms", restored["restored_first_ms"]["max"] <= 100),
        (f"first burst c16 p99 / warm single p50 ({single} ms), each of {len(runs)} runs after make up from stopped "
         f"(before each: {before} snapshot+forks)",
         ", ".join(f"{x}x" for x in ratios), "within 10x in 5 of 5", len(ratios) == 5 and all(x <= 10 for x in ratios)),
        (f"a newly published version's first request / its warm p50 (worst of {len(new['runs'])}; publish to Active "
         f"{new['publish_to_active_s']} s)", f"{new['worst_ratio']}x", "within 6x", new["worst_ratio"] <= 6),
        (f"make up from stopped, s (each of {len(ups)} runs)", ", ".join(f"{u:g}" for u in ups), "within 6 s", all(u <= 6 for u in ups)),
        ("the predictor's processes after the first burst, PSS MiB (snapshot included; each run)",
         ", ".join(f"{x:g}" for x in pss if x is not None), "within 300 MiB", all(x is not None and x <= 300 for x in pss)),
        (f"warm single p50 / its floor ({floor} ms, the parts measured alone)", f"{single / floor:.2f}x" if floor else "-",
         "within 1.25x", bool(floor) and single <= 1.25 * floor),
    ]
    return ["", "SnapStart on the embedded runtime (issue 51): the live version is a snapshot and each worker is forked from it "
            "when a request needs one (containers/emulator/snapstart.py, bench/snapstart.py); in the same run.", "",
            _row("figure", "measured", "target", "met"), _row(*["---"] * 4)] + [_row(f, m, t, _yes(ok)) for f, m, t, ok in rows]


def compose_rows(r: dict) -> list[str]:
    """The compose stack's serving (`make bench BENCH_FLAGS=--compose`): the predictor image behind API Gateway, the same
    floors and peer; the embedded figures' headline ratios, for the stack that deploys."""
    c = r.get("compose")
    if not c:
        return []
    out = ["", f"The compose stack, measured {c['when']} (`make bench BENCH_FLAGS=--compose`): the predictor image behind API "
           "Gateway, each worker a container of it (MiniStack through Podman's Docker API, the runtime interface shim in the "
           "image); the floor and the peer measured as for the embedded stack, in the same run, against this stack's emulator (the "
           "floor's transport is the emulator's zip function: no trivial image is built).", "",
           _row("figure", "measured", "floor", "vs floor", "peer", "vs peer", "target", "met"), _row(*["---"] * 8)]
    out += [headline_row(h) for h in headline(c)]
    ws, cs = c["warm_single"], c["cold_start"]
    w = cs.get("warm_16_workers_s") or {}
    out.append(f"\nWarm single through the stack {ws['api']['p50_ms']} ms vs the in-process handler against the same emulator "
               f"{ws['in_process_floor']['p50_ms']} ms; warming 16 new workers as make up does {w.get('predictor')} s (the emulator's "
               f"zip function: {w.get('trivial')} s); cold start runs {', '.join(map(str, cs['cold_invoke_predict_runs_ms']))} ms.")
    health, embedded_health = (c.get("health_api") or {}).get("p50_ms"), (r.get("health_api") or {}).get("p50_ms", "-")
    if health:
        out.append(f"GET /health through the API (the image's path with our smallest answer: no key, no model, no write): p50 "
                   f"{health} ms; the embedded stack's {embedded_health} ms.")
    out += cpu_line(c)
    return out


def family_table(r: dict) -> list[str]:
    """Per model family: how it is served, a new worker's cold start (target 500 ms) and warm predictions beside
    scikit-learn's in the same process (bench/families.py)."""
    rows = r.get("families") or []
    if not rows:
        return []
    out = ["", "Every family the trainer can pick, trained on 800 reviews-like rows (bench/training.py) and served as a new "
           "worker serves it: cold start = the predictor's imports + the model loaded from its bytes + the first prediction "
           "(S3 and KMS round trips left out), median of 3 fresh processes; warm = in process, beside scikit-learn's "
           "`predict_proba` on the same pipeline (the peer's route)"
           + (f"; measured {r['families_when']} (`make bench BENCH_FLAGS=--families-only`)." if r.get("families_when") else "."), "",
           _row("family", "features", "served through", "cold start ms (imports + load + first)", "cold start via the pipeline ms",
                "warm single ms (vs scikit-learn)", "batch of 1,000 ms (vs scikit-learn)", "cold start within 500 ms"),
           _row(*["---"] * 8)]
    for f in rows:
        if "error" in f:
            out.append(_row(f["family"], "-", "failed: " + f["error"].replace("|", "/").replace("\n", " ")[-200:], "-", "-", "-", "-", "**no**"))
            continue
        cold = f.get("cold_onnx") or f["cold_pipeline"]
        w = f["warm_ms"]
        served = (f"ONNX ({', '.join(f'{k} {v:g} KiB' for k, v in f['artifact_kib'].items())}; holdout diff {f['max_abs_diff']:.1g})"
                  if f.get("cold_onnx") else f"the pipeline: {f['serving']}")
        out.append(_row(f["family"], f["features"], served,
                        f"{cold['total_ms']:g} ({cold['imports_ms']:g} + {cold['load_ms']:g} + {cold['first_predict_ms']:g})",
                        f"{f['cold_pipeline']['total_ms']:g}", f"{w['single_served']:g} ({w['single_ratio']:g}x)",
                        f"{w['batch_1000_served']:g} ({w['batch_ratio']:g}x)", _yes(cold["total_ms"] <= 500)))
    return out


def text_tables(r: dict) -> list[str]:
    """The trainer's text winner against the plain baseline, and the ways of answering a record that leaves features out
    (bench/text_models.py)."""
    t = r.get("text_models") or {}
    lines: list[str] = []
    if t.get("baseline"):
        when = f", measured {r['text_models_when']} (`make bench BENCH_FLAGS=--text-only`)" if r.get("text_models_when") else ""
        lines += ["", "The trainer's winner against a plain baseline (TF-IDF words 1-2 + char_wb 2-5, LinearSVC with balanced classes, C "
                  "by 5-fold CV on the training rows, on the description) over the same shuffled 80/20 splits of bench/reviews.py's "
                  f"file; the winner chosen and refit on the training rows only{when}. Target: the winner's mean accuracy and macro F1 "
                  "each at least the baseline's minus 0.005.", "",
                  _row("dataset", "rows, classes, splits", "winner (chosen per split)", "winner accuracy / macro F1",
                       "baseline accuracy / macro F1", "14 columns sent the description alone", "met"),
                  _row("---", "---", "---", "---", "---", "---", "---")]
        for case in t["baseline"]:
            if "mean" not in case:
                lines.append(_row(case["kind"], f"{case['rows']:,}", "failed", case.get("error", case.get("timed_out_after_s", "")), "", "", ""))
                continue
            winners = sorted({s["winner"] for s in case["splits"]})
            alone = [s["winner_description_alone"] for s in case["splits"] if "winner_description_alone" in s]
            w, b = case["mean"]["winner_scores"], case["mean"]["baseline_scores"]
            lines.append(_row(case["kind"], f"{case['rows']:,}, {case['classes']}, {len(case['splits'])}", ", ".join(winners),
                              f"{w['accuracy']:.3f} / {w['f1_macro']:.3f}", f"{b['accuracy']:.3f} / {b['f1_macro']:.3f}",
                              f"{np.mean([a['accuracy'] for a in alone]):.3f} / {np.mean([a['f1_macro'] for a in alone]):.3f}" if alone else "",
                              "yes" if case["within_0_005"] else "**no**"))
        lines += [f"\n{case['kind']}, {case['rows']:,} rows: measured {case['measured']}" for case in t["baseline"] if case.get("measured")]
    for case in t.get("absent") or []:
        if "ways" not in case:
            lines += ["", f"Answering without features, {case['rows']:,} rows: failed ({case.get('error', case.get('timed_out_after_s', ''))})"]
            continue
        sent = [k for k in next(iter(case["ways"].values())) if k not in ("model", "seconds")]
        lines += ["", f"Answering a record that leaves features out: the whole file's shape, {case['rows']:,} rows ({case['classes']} "
                  f"classes), one 80/20 split ({case['test_rows']:,} test rows), each record sent whole, as the description alone and "
                  "as description, variety and winery; accuracy / macro F1. Target: within 0.02 accuracy of a model of those columns "
                  f"alone{'; measured ' + case['measured'] if case.get('measured') else ''}.", "", _row("way", *sent, "training s"),
                  _row(*["---"] * (len(sent) + 2))]
        for way, got in case["ways"].items():
            lines.append(_row(way, *(f"{got[k]['accuracy']:.3f} / {got[k]['f1_macro']:.3f}" for k in sent), f"{got['seconds']:g}"))
    return lines


def poisoning_lines(r: dict) -> list[str]:
    """Poisoning through feedback, swept (bench/poisoning.py): the backdoor's cells and the honest corrections'."""
    p = r.get("poisoning") or {}
    if "backdoor" not in p:
        return ["", f"Poisoning sweep: failed ({p.get('error', p.get('timed_out_after_s', ''))})"] if p else []
    b, h = p["backdoor"], p["honest"]
    when = f", measured {r['poisoning_when']} (`make bench BENCH_FLAGS=--poisoning-only`, {p['seconds']:g} s)" if r.get("poisoning_when") else ""
    return ["", f"Poisoning through feedback, swept on the default model{when}: a trigger inside the range the screen lets through "
            "on class_0 wines labelled class_2 (each numeric feature, 3 trigger values, 5-25% of the feedback, 1 or 8 keys); "
            "and honest corrections of the champion's real mistakes.", "",
            _row("sweep", "cells", "promoted", "rows held for a person", "target", "met"), _row(*["---"] * 6),
            _row("backdoor", b["cells"], b["promoted"], b["held_rows"],
                 f"no promoted candidate answers class_2 for > 10% of the 59 probe wines: {b['promoted_answering_class_2_over_10pct']} did",
                 _yes(b["met"])),
            _row("honest corrections", h["cells"], h["promoted"], h["held_rows"], f"promoted in >= 90% of cells: {h['promoted_share']:.0%}",
                 _yes(h["met"]))]


def write(r: dict, out: Path) -> None:
    ws, up, cs = r["warm_single"], r["make_up"], r["cold_start"]
    lines = [
        f"Measured {r['when']} on {r['machine']['cpus']} CPUs, Python {r['machine']['python']} ({r['machine']['platform']}).",
        *([f"Training re-measured {r['training_when']} (`make bench BENCH_FLAGS=--training-only`)."] if r.get("training_when") else []),
        *([f"History re-measured {r['history_when']} (`make bench BENCH_FLAGS=--history-only`)."] if r.get("history_when") else []),
        *([f"Serving re-measured {r['serving_when']} (`make bench BENCH_FLAGS=--serving-only`): the stack's figures, the floors, "
           "the peer, cold start and make up."] if r.get("serving_when") else []),
        "",
    ]
    if r.get("floors"):
        lines += [f"The model served: `{r['floors']['parts'].get('runtime')}` runtime. Floor: the parts of a request measured alone "
                  "against the same emulator (bench/floors.py). Peer: the same model behind gunicorn + Flask, 2 workers, writing "
                  "to the same table (bench/peer.py).", "",
                  _row("figure", "measured", "floor (sum of parts)", "vs floor", "peer", "vs peer", "target", "met"),
                  _row("---", "---", "---", "---", "---", "---", "---", "---")]
        lines += [headline_row(h) for h in headline(r)]
        for size, what in (("1", "one record"), ("1000", "1,000 records")):
            total, named = floor_sum(r, size)
            lines.append(f"\nFloor of {what}: " + " + ".join(f"{k} {v:g} ms" for k, v in named.items()) + f" = {total:g} ms")
            sent = r["floors"]["parts"][size].get("metrics_sent_ms")
            if sent is not None:
                lines.append(f"(the buffer's thread then sends the metrics: hand-over and PutMetricData {sent:g} ms, off the request path)")
        lines += cpu_line(r)
        if r.get("packages_mib"):
            lines.append("\nThe predictor's dependencies installed (AWS's zip limit is 250 MB unzipped): "
                         + "; ".join(f"{k}: {v:g} MiB" for k, v in r["packages_mib"].items()))
        lines.append("")
    lines += [
        _row("figure", "measured", "floor / context", "target"),
        _row("---", "---", "---", "---"),
        _row("warm single prediction, API Gateway -> Lambda -> DynamoDB (p50/p95/p99 ms)",
             f"{ws['api']['p50_ms']} / {ws['api']['p95_ms']} / {ws['api']['p99_ms']}",
             f"in-process handler, same emulator: {ws['in_process_floor']['p50_ms']} / {ws['in_process_floor']['p95_ms']} / "
             f"{ws['in_process_floor']['p99_ms']}", ""),
    ]
    for b in r["batch"]:
        lines.append(_row(f"batch of {b['batch']} (p50 ms, rows/s)", f"{b['p50_ms']} ms, {b['rows_per_s']} rows/s", "", ""))
    for c in r["concurrency"]:
        lines.append(_row(f"concurrency {c['concurrency']} (req/s, p50/p99 ms, 429s, errors)",
                          f"{c['req_per_s']} req/s, {c.get('p50_ms', '-')} / {c.get('p99_ms', '-')} ms, {c['throttled_429']} x 429, "
                          f"{c['errors']} errors", f"{c['requests']} requests on loopback", ""))
    if cs.get("fresh_process"):
        fresh = cs["fresh_process"]
        context = (f"a fresh process (spawn -> answer) {fresh['wall_ms']} ms: its imports {fresh['imports_ms']} + load and first "
                   f"predict {fresh['load_and_first_predict_ms']}; the emulator's trivial function's cold start "
                   f"{cs['emulator_trivial_cold_ms']} ms (runs: {', '.join(map(str, cs['emulator_trivial_cold_runs_ms']))}); "
                   f"warm invoke {cs['warm_invoke_health_ms']} ms")
        predict = f"{cs['cold_invoke_predict_ms']} (runs: {', '.join(map(str, cs['cold_invoke_predict_runs_ms']))})"
    else:  # older results
        imports = cs["imports_in_fresh_process_ms"]
        imports = ", ".join(f"{k} route {v} ms" for k, v in imports.items()) if isinstance(imports, dict) else f"{imports} ms"
        context = (f"fresh-process imports: {imports}; in-process import+load+first predict "
                   f"{cs['in_process_import_load_first_predict_ms']} ms; warm invoke {cs['warm_invoke_health_ms']} ms")
        predict = cs["cold_invoke_predict_ms"]
    lines += [
        _row("cold start: first invoke after a config update (health / predict, ms)", f"{cs['cold_invoke_health_ms']} / {predict}",
             context, ""),
        _row("make up, fresh / from stopped (s)", f"{up['fresh_s']} / {up['from_stopped_s']}", "dependencies installed; warms the pool",
             "from stopped within 10 s"),
    ]
    if cs.get("warm_16_workers_s"):
        w = cs["warm_16_workers_s"]
        lines.append(_row("warm 16 new workers as make up does (waves of calls, each holding its worker 250 ms), s", w["predictor"],
                          f"the emulator's trivial function, the same way: {w['trivial']} s (its worker bootstrap imports botocore)", ""))
    targets = {("reviews", 1_000): "within 15 s", ("numeric", 1_000_000): "within 60 s and 2 GiB", ("full", 1_000): "within 15 s",
               ("full", 5_810): "within 60 s", ("full", 130_000): "within 300 s and 3 GB (the trainer Lambda: 900 s, 3,008 MB)",
               ("notes", 130_000): "within 300 s and 3 GB"}
    for t in r["training"]:
        kind = t.get("kind", "numeric")
        measured = (f"{t['seconds']} s (push {t['push_seconds']} s), {t['peak_mib']} MiB peak; {t['winner']}, holdout accuracy "
                    f"{t['holdout_accuracy']}, macro F1 {t['holdout_f1_macro']}" + (f"; model.onnx {t['onnx_mib']} MiB" if t.get("onnx_mib") else "")
                    if "seconds" in t else
                    f"not finished in {t['timed_out_after_s']} s" if "timed_out_after_s" in t else "failed")
        what = {"reviews": "reviews-like: text + categorical + numeric", "numeric": "numeric wine-like",
                "full": "the whole reviews file's 14-column shape (bench/reviews.py)",
                "notes": "the same file, description + points + price + variety only"}[kind]
        lines.append(_row(f"training, {t['rows']:,} rows, {what} (read from S3, compare, refit, evaluate, write)", measured,
                          ", ".join(f"{n} {v:.3f}" if isinstance(v, float) else f"{n} skipped" for n, v in t.get("candidates", {}).items()),
                          targets.get((kind, t["rows"]), "")))
    for t in r["training"]:  # the trained champion served: the whole file's model beside the small ones
        if not t.get("serving"):
            continue
        sv, w = t["serving"], t["serving"]["warm_ms"]
        lines.append(_row(f"serving the {t['rows']:,}-row {t['kind']} champion ({sv['runtime']}; model.onnx {t.get('onnx_mib')} MiB): "
                          "cold start, fresh process (imports / load / first predict, ms)",
                          f"{sv['cold']['total_ms']} ({sv['cold']['imports_ms']} / {sv['cold']['load_ms']} / {sv['cold']['first_predict_ms']})",
                          f"warm single {w['single_served']} ms (scikit-learn {w['single_sklearn']}), batch of 1,000 {w['batch_1000_served']} ms "
                          f"(scikit-learn {w['batch_1000_sklearn']})", "cold start within 500 ms"))
    h = r.get("history") or {}
    for name, q in (h.get("queries") or {}).items():
        lines.append(_row(f"history read on {h['rows']:,} records: {name} (p50/p99 ms)", f"{q['p50_ms']} / {q['p99_ms']}",
                          f"GET /predictions through API Gateway; the emulator's slowest checkpoint {h.get('checkpoint_s_max')} s (in a forked child)",
                          "p99 under 1 s"))
    m = r.get("monitoring") or {}
    if "pass_s" in m:
        lines.append(_row(f"model monitoring, one pass over {m['predictions']:,} predictions (scan, compare, signed report, metrics)",
                          f"{m['pass_s']} s, {m['peak_rss_mib']} MiB peak", f"reading {m['of_which_reading_s']} s; "
                          f"import {m['import_ms']} ms; drifted {', '.join(m['drifted_features'])}; {m['note']}",
                          "within 30 s and 512 MiB"))
    elif m:
        lines.append(_row("model monitoring, 100,000 predictions", "failed", m.get("error", ""), "within 30 s and 512 MiB"))
    for name, seconds in r.get("repo", {}).items():
        lines.append(_row(name.replace("_", " "), f"{seconds} s", "make bench --fresh-clone / --make-test", ""))
    lines += snapstart_rows(r) + family_table(r) + text_tables(r) + poisoning_lines(r) + champion_rows(r) + compose_rows(r)
    if r.get("profile_batch_1000"):
        lines += ["", "Where the time goes on the slowest path: the in-process handler, 3 requests of 1000 records "
                  "(cProfile, cumulative, our code and botocore):", "", "```text", *r["profile_batch_1000"], "```"]
    (out / "latest.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c, d, e) = plt.subplots(1, 5, figsize=(25, 4.5))
    for ax, size, title in ((a, "1", "warm single prediction, p50"), (b, "1000", "batch of 1,000, p50")):
        if not r.get("floors"):
            break
        _, named = floor_sum(r, size)
        measured = ws["api"]["p50_ms"] if size == "1" else next(x["p50_ms"] for x in r["batch"] if x["batch"] == 1000)
        bottom = 0.0
        for name, value in named.items():
            ax.bar(0, value, 0.6, bottom=bottom, label=name)
            bottom += value
        ax.bar(1, measured, 0.6, color="black")
        peer = (r.get("peer") or {}).get("single_p50_ms" if size == "1" else "batch_1000_p50_ms")
        if peer is not None:
            ax.bar(2, peer, 0.6, color="grey")
        ax.set_xticks([0, 1, 2], ["floor (parts)", "through the stack", "gunicorn + Flask"])
        ax.set_ylabel("ms")
        ax.set_title(title)
        if size == "1000":
            ax.axhline(200, color="red", linestyle="--", linewidth=1, label="target")
        ax.legend(fontsize=7)
    levels = [x["concurrency"] for x in r["concurrency"]]
    c.plot(levels, [x.get("p50_ms") for x in r["concurrency"]], marker="o", label="p50")
    c.plot(levels, [x.get("p99_ms") for x in r["concurrency"]], marker="o", label="p99")
    c.axhline(1000, color="red", linestyle="--", linewidth=1, label="p99 target at 16")
    c.set_yscale("log")
    c.set_xlabel("concurrent clients")
    c.set_ylabel("ms")
    c.set_title("concurrency, after make up")
    c.legend()
    for kind in ("numeric", "reviews", "full", "notes"):
        done = [t for t in r["training"] if "seconds" in t and t.get("kind", "numeric") == kind]
        d.plot([t["rows"] for t in done], [t["seconds"] for t in done], marker="o", label=kind)
    d.legend()
    if any("seconds" in t for t in r["training"]):
        d.set_xscale("log")
        d.set_yscale("log")
    d.set_xlabel("rows")
    d.set_ylabel("seconds")
    d.set_title("training time")
    done = [f for f in r.get("families") or [] if "error" not in f]
    if done:
        at = list(range(len(done)))
        e.bar([i - 0.2 for i in at], [(f.get("cold_onnx") or f["cold_pipeline"])["total_ms"] for f in done], 0.4, label="as served")
        e.bar([i + 0.2 for i in at], [f["cold_pipeline"]["total_ms"] for f in done], 0.4, color="grey", label="via scikit-learn")
        e.axhline(500, color="red", linestyle="--", linewidth=1, label="target")
        e.set_xticks(at, [f["family"].replace("_", "\n", 1) for f in done], fontsize=7)
        e.set_ylabel("ms")
        e.set_ylim(0, max(max(f["cold_pipeline"]["total_ms"] for f in done), 500) * 1.35)
        e.set_title("cold start per model family")
        e.legend(fontsize=7, loc="upper right", ncol=3)
    fig.tight_layout()
    fig.savefig(out / "latest.png", dpi=100)
    plt.close(fig)
