"""An image function's invocation in MiniStack without the engine calls that grew with the pool and with the log.

MiniStack 1.5 runs an image function (the predictor's, in the compose stack) in containers it keeps in a pool per
function, and each invocation cost Docker API calls (to Podman's socket here) that measured more than the function:

- **The pool.** To hand a container out, `_pool_acquire` first asks the engine whether each container of the pool is
  still running (`container.reload()`, one call each), all of it while holding the pool's one lock. With the 16
  workers `make up` warms, every invocation made 16 calls before its own, and concurrent ones waited for each other's:
  `make bench BENCH_FLAGS=--compose` (2026-12-02 19:18 UTC): warm single 167 ms against 5.1 ms for the same handler in
  process, the first burst's p99 2.3-3.2 s. `install()` replaces it with: under the lock, mark the first free
  container taken; outside it, ask the engine about that one only; if it died while idle, drop it from the pool (as
  MiniStack's prune does) and take the next. With no free container, MiniStack's own function runs unchanged (it
  prunes the dead, applies the function's and the account's concurrency caps, and says spawn or throttle).
- **The log.** After each answer MiniStack reads the container's log since the invocation started
  (`container.logs(since=...)`), and the engine scans the container's whole log file for it: on a container that had
  served ~2,500 requests (1.5 MB of log) the call took 40-56 ms, growing with every request, where `tail=200` with the
  same `since` took 4-8 ms (measured on Podman's socket, 2026-12-02). `install()` adds `tail=TAIL` to a `since` read
  that names no tail: an invocation's log lines are read from the end. An invocation that prints more than TAIL lines
  keeps its last TAIL in CloudWatch Logs (the predictor prints a few).
"""

from __future__ import annotations

import time
from typing import Any

TAIL = 256


def install() -> None:
    """Replace ministack.services.lambda_svc._pool_acquire (looked up by name at each invocation), and wrap docker-py's
    Container.logs for reads `since` a moment."""
    from ministack.services import lambda_svc as svc

    original = svc._pool_acquire

    def pool_acquire(key: str, max_concurrency: int | None) -> tuple[dict[str, Any] | None, str]:
        while True:
            with svc._warm_pool_lock:
                entries = svc._warm_pool.setdefault(key, [])
                entry = next((e for e in entries if not e["in_use"]), None)
                if entry is not None:
                    entry["in_use"] = True
                    entry["last_used"] = time.time()
            if entry is None:
                return original(key, max_concurrency)
            if svc._is_container_running(entry["container"]):
                return entry, "reused"
            with svc._warm_pool_lock:
                entries = svc._warm_pool.get(key, [])
                if entry in entries:
                    entries.remove(entry)

    svc._pool_acquire = pool_acquire
    if svc.docker_lib is not None:
        _tail_since_reads(svc.docker_lib.models.containers.Container)


def _tail_since_reads(container_class: Any) -> None:
    logs = container_class.logs
    if getattr(logs, "tails_since_reads", False):
        return

    def tailed(self: Any, **kwargs: Any) -> Any:
        if kwargs.get("since") and "tail" not in kwargs and not kwargs.get("stream") and not kwargs.get("follow"):
            kwargs["tail"] = TAIL
        return logs(self, **kwargs)

    tailed.tails_since_reads = True  # type: ignore[attr-defined]
    container_class.logs = tailed
