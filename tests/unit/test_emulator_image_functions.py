"""containers/emulator/image_functions.py: a warm container is taken from MiniStack's pool with one question to the engine
(about the container handed out), not one per pooled container under the pool's lock; the dead are still dropped, and
with none free MiniStack's own function decides (spawn, or the concurrency caps). An invocation's log is read from
the end of the container's log, not by a scan of all of it."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "containers" / "emulator"))
import image_functions  # noqa: E402

KEY = "000000000000:us-east-1:predictor:image:sommelier/predictor:x"


class Container:
    def __init__(self, name: str, running: bool = True):
        self.name, self.running = name, running


@pytest.fixture
def svc(monkeypatch):
    from docker.models.containers import Container as DockerContainer
    from ministack.services import lambda_svc

    asked: list[str] = []
    monkeypatch.setattr(DockerContainer, "logs", DockerContainer.logs)  # install() wraps it; restored after the test

    def is_running(container: Container) -> bool:
        asked.append(container.name)
        return container.running

    monkeypatch.setattr(lambda_svc, "_pool_acquire", lambda_svc._pool_acquire)  # restored after the test
    monkeypatch.setattr(lambda_svc, "_warm_pool", {})
    monkeypatch.setattr(lambda_svc, "_is_container_running", is_running)
    lambda_svc.asked = asked
    yield lambda_svc
    del lambda_svc.asked


def _pool(svc, n: int, busy: int = 0) -> list[dict]:
    entries = [{"container": Container(f"c{i}"), "tmpdir": None, "in_use": i < busy, "last_used": 0.0, "created": 0.0} for i in range(n)]
    svc._warm_pool[KEY] = entries
    return entries


def test_a_warm_container_costs_one_question_to_the_engine_not_one_per_pooled_container(svc):
    entries = _pool(svc, 16, busy=3)
    entry, reason = svc._pool_acquire(KEY, None)  # MiniStack's own, first
    assert (reason, entry is entries[3]) == ("reused", True)
    assert len(svc.asked) == 16  # what issue 39 measured: every pooled container asked about, under the lock

    svc.asked.clear()
    entries = _pool(svc, 16, busy=3)
    image_functions.install()
    entry, reason = svc._pool_acquire(KEY, None)
    assert (reason, entry is entries[3], entry["in_use"], entry["last_used"] > 0) == ("reused", True, True, True)
    assert svc.asked == ["c3"]


def test_a_container_that_died_while_idle_is_dropped_and_the_next_one_taken(svc):
    entries = list(_pool(svc, 4))
    entries[0]["container"].running = entries[1]["container"].running = False
    image_functions.install()
    entry, reason = svc._pool_acquire(KEY, None)
    assert (reason, entry is entries[2]) == ("reused", True)
    assert svc.asked == ["c0", "c1", "c2"]
    assert [e["container"].name for e in svc._warm_pool[KEY]] == ["c2", "c3"]


def test_with_none_free_ministack_decides_spawn_or_the_functions_cap(svc):
    _pool(svc, 2, busy=2)
    image_functions.install()
    assert svc._pool_acquire(KEY, None) == (None, "spawn")
    assert svc._pool_acquire(KEY, 2) == (None, "func_cap")
    _pool(svc, 2, busy=2)[1]["container"].running = False  # a dead busy one is pruned by MiniStack's own, freeing the cap
    assert svc._pool_acquire(KEY, 2) == (None, "spawn")


def test_concurrent_invocations_get_a_container_each(svc):
    _pool(svc, 16)
    image_functions.install()
    gate = threading.Barrier(16)
    taken: list[dict] = []

    def take() -> None:
        gate.wait(timeout=10)
        entry, reason = svc._pool_acquire(KEY, None)
        assert reason == "reused"
        taken.append(entry)

    threads = [threading.Thread(target=take) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len({id(e) for e in taken}) == 16
    assert svc._pool_acquire(KEY, None) == (None, "spawn")  # all 16 taken: the 17th starts one


def test_a_read_since_the_invocation_began_is_read_from_the_end_of_the_log(svc):
    from docker.models.containers import Container as DockerContainer

    reads: list[dict] = []

    class Engine:
        def logs(self, **kwargs):
            reads.append(kwargs)
            return b"START\nEND\n"

    image_functions._tail_since_reads(Engine)
    image_functions._tail_since_reads(Engine)  # installed twice (a second emulator start in one process): wrapped once
    engine = Engine()
    assert engine.logs(stdout=True, stderr=True, since=1796240078.5) == b"START\nEND\n"  # as _invoke_rie reads it
    engine.logs(stdout=True, stderr=True, since=1796240078.5, tail=5)  # a tail asked for is kept
    engine.logs(stdout=True, stderr=True)  # the whole log (a runtime that never answered): untouched
    engine.logs(stream=True, follow=True, since=1796240078.5)  # a followed stream (ECS tasks): untouched
    assert [r.get("tail") for r in reads] == [image_functions.TAIL, 5, None, None]

    image_functions.install()
    assert DockerContainer.logs.tails_since_reads  # MiniStack's docker-py containers get it too
