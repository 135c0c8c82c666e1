"""Taking a warm container from MiniStack's pool without asking the engine about every other one.

MiniStack 1.5 runs an image function (the predictor's, in the compose stack) in containers it keeps in a pool per
function. To hand one out, `_pool_acquire` first asks the engine whether each container of the pool is still running
(one Docker API call each, `container.reload()`), all of it while holding the pool's one lock. With the 16 workers
`make up` warms, every invocation made 16 calls to Podman's API before its own, and concurrent invocations waited for
each other's: measured in `make bench BENCH_FLAGS=--compose` (2026-12-02), the first burst's p99 2.3-2.9 s.

`install()` replaces it with: under the lock, mark the first free container taken; outside it, ask the engine about
that one only; if it died while idle, drop it from the pool (as MiniStack's prune does) and take the next. With no free
container, MiniStack's own function runs unchanged (it prunes the dead, applies the function's and the account's
concurrency caps, and says spawn or throttle).
"""

from __future__ import annotations

import time
from typing import Any


def install() -> None:
    """Replace ministack.services.lambda_svc._pool_acquire (looked up by name at each invocation)."""
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

    pool_acquire.original = original  # type: ignore[attr-defined]
    svc._pool_acquire = pool_acquire
