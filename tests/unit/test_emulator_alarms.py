"""containers/emulator/alarms.py: MiniStack's alarms evaluated over their window, at most once a second, with the
verdicts MiniStack's own evaluation gives, and a put's cost no longer growing with every point ever stored."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "containers" / "emulator"))
import alarms  # noqa: E402


@pytest.fixture
def cw(monkeypatch):
    from ministack.services import cloudwatch

    for name in ("_evaluate_alarm", "_evaluate_all_alarms", "_evict_old_metrics"):
        monkeypatch.setattr(cloudwatch, name, getattr(cloudwatch, name))  # restored after the test
    monkeypatch.setattr(cloudwatch, "_metrics", {})
    monkeypatch.setattr(cloudwatch, "_alarms", {})
    monkeypatch.setattr(cloudwatch, "_record_history", lambda *a, **k: None)
    monkeypatch.setattr(cloudwatch, "_dispatch_alarm_actions", lambda *a, **k: None)
    return cloudwatch


def _alarm(name: str, threshold: float) -> dict:
    return {"AlarmName": name, "Namespace": "S", "MetricName": "ServerError", "Period": 60, "EvaluationPeriods": 1,
            "Statistic": "Average", "Threshold": threshold, "ComparisonOperator": "GreaterThanThreshold", "StateValue": "INSUFFICIENT_DATA"}


def _points(cw, values: list[float], age: float) -> None:
    series = cw._metrics.setdefault(("S", "ServerError", ""), [])
    series += [{"Timestamp": time.time() - age, "Unit": "Count", "Dimensions": {}, "Value": v} for v in values]


@pytest.mark.parametrize(("old", "recent", "expected"), [([1.0] * 5000, [0.0] * 50, "OK"), ([0.0] * 5000, [1.0] * 50, "ALARM")])
def test_the_verdict_is_the_one_over_the_window_as_minstack_gives_it(cw, old, recent, expected):
    _points(cw, old, age=3600)  # an hour ago: outside a 60 s window
    _points(cw, recent, age=1)
    theirs, ours = _alarm("theirs", 0.5), _alarm("ours", 0.5)
    cw._evaluate_alarm(theirs)  # MiniStack's own
    alarms.install()
    cw._evaluate_alarm(ours)
    assert ours["StateValue"] == theirs["StateValue"] == expected


def test_only_the_windows_points_are_read():
    metrics = {("S", "M", ""): [{"Timestamp": t} for t in (10.0, 500.0, 990.0, 995.0)], ("S", "Other", ""): [{"Timestamp": 999.0}]}
    assert [p["Timestamp"] for p in alarms.window(metrics, "S", "M", cutoff=900.0)] == [995.0, 990.0]


def test_puts_inside_a_second_evaluate_once_and_the_last_put_is_evaluated(cw, monkeypatch):
    now, scheduled, evaluations = [100.0], [], []
    stats = cw._calc_stats
    monkeypatch.setattr(cw, "_calc_stats", lambda points: (evaluations.append(len(points)), stats(points))[1])
    alarms.install(clock=lambda: now[0], schedule=lambda delay, fn: scheduled.append((delay, fn)))
    alarm = cw._alarms["a"] = _alarm("a", 0.5)
    _points(cw, [0.0], age=0)
    cw._evaluate_all_alarms()  # the first put evaluates at once
    assert (len(evaluations), alarm["StateValue"]) == (1, "OK")
    for _ in range(50):  # 50 more in the same second: one evaluation scheduled for its end, none now
        _points(cw, [1.0], age=0)
        cw._evaluate_all_alarms()
    assert len(evaluations) == 1 and len(scheduled) == 1 and scheduled[0][0] == pytest.approx(alarms.EVERY)
    now[0] += alarms.EVERY
    scheduled[0][1]()  # the event loop runs it: the last put's point counts
    assert (evaluations, alarm["StateValue"]) == ([1, 51], "ALARM")


def test_an_ecs_task_gets_a_key_the_sdk_can_use_unless_it_was_given_one(monkeypatch):
    """containers/emulator/task_credentials.py: MiniStack's credentials address for tasks is one botocore refuses."""
    import task_credentials
    from ministack.services import ecs

    monkeypatch.setattr(ecs, "_register_metadata", lambda *a, **k: "token")  # MiniStack's own, stood in (restored after)
    task_credentials.install()
    env: dict[str, str] = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://10.89.0.3:4566/v2/credentials/x"}
    assert ecs._register_metadata("task", "cluster", {}, {}, "FARGATE", env, False, "10.89.0.3") == "token"
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == ("test", "test")
    given = {"AWS_ACCESS_KEY_ID": "mine", "AWS_SECRET_ACCESS_KEY": "secret"}
    ecs._register_metadata("task", "cluster", {}, {}, "FARGATE", given, False, None)
    assert given["AWS_ACCESS_KEY_ID"] == "mine" and given["AWS_SECRET_ACCESS_KEY"] == "secret"


def test_points_past_two_weeks_are_dropped_once_a_minute_not_on_every_request(cw):
    """MiniStack rebuilt every series on every CloudWatch request to drop points older than two weeks (21 % of the
    compose emulator's GIL time after a bench); MiniStack's own eviction now runs at most once every EVICT_EVERY s."""
    now = [1000.0]
    alarms.install(clock=lambda: now[0], schedule=lambda wait, fn: None)
    _points(cw, [1.0], age=15 * 86400)  # past two weeks
    _points(cw, [2.0], age=0)
    cw._evict_old_metrics()
    assert [p["Value"] for p in cw._metrics[("S", "ServerError", "")]] == [2.0]  # the first call evicts, as MiniStack did
    _points(cw, [3.0], age=15 * 86400)
    now[0] += alarms.EVICT_EVERY - 1
    cw._evict_old_metrics()
    assert len(cw._metrics[("S", "ServerError", "")]) == 2  # within the minute: kept, nothing rebuilt
    now[0] += 1
    cw._evict_old_metrics()
    assert [p["Value"] for p in cw._metrics[("S", "ServerError", "")]] == [2.0]
