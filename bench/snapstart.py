"""SnapStart's figures on the embedded runtime (issue 51): the predictor's live version is a snapshot, and each worker is
forked from it when a request needs one (containers/emulator/snapstart.py).

- restored: the first request answered by a worker forked for it (its forks ended with SIGKILL first, so the request
  finds none free), beside warm requests of the same run;
- new version: a version published (a configuration change, as a deploy makes), the seconds from publish to Active (the
  snapshot taken) apart, then its first invocation beside its warm ones;
- memory: the PSS of the predictor's processes, the snapshots included (a fork shares the snapshot's pages until it
  writes them).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import time
from pathlib import Path
from typing import Any

import requests

from devstack.runtime import wait_until


def _workers(state_dir: Path) -> dict[int, int]:
    """The predictor's worker processes of the stack whose state is `state_dir`: pid -> parent pid."""
    mark = f"{state_dir}/tmp/ministack-lambda-sommelier-predictor-".encode()
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark in (entry / "cmdline").read_bytes():
                    out[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return out


def snapshots_and_forks(state_dir: Path) -> tuple[list[int], list[int]]:
    workers = _workers(state_dir)
    snapshots = [pid for pid, parent in workers.items() if parent not in workers]
    return snapshots, [pid for pid, parent in workers.items() if parent in workers]


def pss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1)


def memory(state_dir: Path) -> dict[str, Any]:
    snapshots, forks = snapshots_and_forks(state_dir)
    return {"snapshots": len(snapshots), "forks": len(forks), "pss_mib": pss_mib(snapshots + forks),
            "snapshot_pss_mib": pss_mib(snapshots)}


def _end_forks(state_dir: Path) -> None:
    _, forks = snapshots_and_forks(state_dir)
    for pid in forks:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def gone() -> None:  # its /proc entry, not only its command line (emptied before the exit is notified)
        assert not any(Path(f"/proc/{pid}").exists() for pid in forks), "forks still running"

    wait_until("the forks to end", gone, 30, interval=0.05)


def restored(info: dict, state_dir: Path, example: dict, reps: int = 10) -> dict[str, Any]:
    """ms of a request answered by a worker forked for it, `reps` times, each beside 20 warm requests."""
    session = requests.Session()
    url, headers = info["api_url"] + "/predict", {"x-api-key": info["api_key"]}
    body = {"features": example}

    def one() -> float:
        started = time.perf_counter()
        resp = session.post(url, json=body, headers=headers, timeout=30)
        assert resp.status_code == 200, resp.text[:300]
        return (time.perf_counter() - started) * 1000

    first, warm = [], []
    for _ in range(reps):
        _end_forks(state_dir)
        first.append(one())
        warm += [one() for _ in range(20)]
    warm_p50 = statistics.median(warm)
    return {"restored_first_ms": {"p50": round(statistics.median(first), 1), "max": round(max(first), 1)},
            "restored_runs_ms": [round(f, 1) for f in first], "warm_p50_ms": round(warm_p50, 1),
            "ratio_max_to_warm": round(max(first) / warm_p50, 2)}


def new_version(cfg, info: dict, reps: int = 3) -> dict[str, Any]:
    """A version published after a configuration change: publish -> Active seconds, its first invocation (direct, the
    /health route, which answers with the champion) and its warm ones; the version is deleted after (its snapshot too)."""
    lam = cfg.client("lambda")
    name = info["outputs"]["PredictorFunctionName"]
    payload = json.dumps({"httpMethod": "GET", "resource": "/health", "path": "/health", "requestContext": {"requestId": "bench"}})

    def invoke(version: str) -> float:
        started = time.perf_counter()
        resp = lam.invoke(FunctionName=name, Qualifier=version, Payload=payload)
        answer = json.loads(resp["Payload"].read())
        assert "FunctionError" not in resp and answer.get("statusCode") == 200, answer
        return (time.perf_counter() - started) * 1000

    runs = []
    for _ in range(reps):
        env = (lam.get_function_configuration(FunctionName=name).get("Environment") or {}).get("Variables", {})
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": {**env, "BENCH_NONCE": str(time.time())}})
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        started = time.perf_counter()
        version = lam.publish_version(FunctionName=name)["Version"]

        def active(version: str = version) -> None:
            state = lam.get_function_configuration(FunctionName=name, Qualifier=version)["State"]
            assert state == "Active", state

        wait_until(f"version {version} Active", active, 120, interval=0.05)
        to_active = time.perf_counter() - started
        first = invoke(version)
        warm = statistics.median(invoke(version) for _ in range(20))
        lam.delete_function(FunctionName=name, Qualifier=version)
        runs.append({"publish_to_active_s": round(to_active, 2), "first_ms": round(first, 1), "warm_p50_ms": round(warm, 1),
                     "ratio": round(first / warm, 2)})
    return {"runs": runs, "worst_ratio": max(r["ratio"] for r in runs),
            "publish_to_active_s": statistics.median(r["publish_to_active_s"] for r in runs)}
