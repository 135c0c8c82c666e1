"""Where a request's CPU goes: CPU seconds each group of processes spent during a burst, from /proc (Linux).

On 2 cores the stack's throughput under concurrency, and so its first burst, is bounded by the CPU one request costs
all of its processes together: the emulator (API Gateway, Lambda's dispatch, DynamoDB, CloudWatch), the function's
workers (ours), the container engine where the functions are containers (compose), and the client sending the load.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

# the first pattern found in a process's command line names its group
GROUPS = (("the predictor's workers", ("ministack-lambda-sommelier-predictor", "awslambdaric predictor", "lambda_rie")),
          ("emulator (MiniStack)", ("checkpointed.py", "ministack")),
          ("container engine (Podman's API, conmon)", ("podman", "conmon")))
TICK = os.sysconf("SC_CLK_TCK")


def _cpu_by_process() -> dict[int, tuple[str, float]]:
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        out[int(entry.name)] = (cmd, (int(fields[11]) + int(fields[12])) / TICK)
    return out


def _group(pid: int, cmd: str) -> str:
    if pid == os.getpid():
        return "the load's client (this process)"
    return next((name for name, patterns in GROUPS if any(p in cmd for p in patterns)), "other")


def split(load: Callable[[], int]) -> dict[str, float]:
    """Run `load` (it answers how many requests it sent) and return CPU ms per request for each group, the machine's
    busy CPU ms per request, and the requests a second that CPU would allow on all of this machine's cores."""
    before = _cpu_by_process()
    requests = load()
    after = _cpu_by_process()
    spent: dict[str, float] = {}
    for pid, (cmd, cpu) in after.items():
        earlier = before.get(pid)
        used = cpu - (earlier[1] if earlier and earlier[0] == cmd else 0.0)
        if used > 0:
            spent[_group(pid, cmd)] = spent.get(_group(pid, cmd), 0.0) + used
    out = {name: round(seconds / requests * 1000, 2) for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1])}
    total = sum(spent.values()) / requests * 1000
    return {**out, "total_ms_per_request": round(total, 2), "requests": requests,
            "ceiling_req_per_s": round((os.cpu_count() or 1) * 1000 / total) if total else 0}
