"""Alarm evaluation in MiniStack as CloudWatch does it: periodically, over the alarm's window.

MiniStack 1.5 evaluates every alarm on every PutMetricData, each over every point ever stored for
its metric, so what a request's metrics cost grows with the stack's age (measured: 2 ms on a fresh
stack, 21 ms after 1,000 predictions, and the API's p50 from 22 to 37 ms; its one event loop does
this while every other request waits). `install()` replaces both with: all alarms evaluated at most
once per EVERY seconds (a put inside that second schedules one evaluation at its end, so the last
put is never left unevaluated), each over the points of its window only, found by walking each
series back from its newest point (points are stored as they arrive; the walk stops at the first
point older than the window by more than SLACK, so a point sent with an explicit timestamp older
than that, behind newer ones, is not seen: the predictor never sends one). The state changes,
history and actions are MiniStack's own functions.

MiniStack 1.5 also drops metric points older than two weeks on every CloudWatch request, by rebuilding the list of
every series: a cost that grows with every point stored too. On the compose stack after a `make bench --compose`
(2026-12-02 20:35 UTC), that list comprehension was 21 % of the emulator's time holding the GIL (py-spy --gil), where
the requests' PutMetricData arrive 32 a second from 16 warm workers. `install()` runs MiniStack's own eviction at most
once every EVICT_EVERY seconds: a point past two weeks is kept that much longer.
"""

from __future__ import annotations

import asyncio
import time

EVERY = 1.0
SLACK = 60.0
EVICT_EVERY = 60.0


def window(metrics: dict, namespace: str, name: str, cutoff: float) -> list[dict]:
    """The points of one metric (every dimension set) stamped at or after `cutoff`."""
    recent = []
    for (ns, mn, _), points in list(metrics.items()):
        if ns != namespace or mn != name:
            continue
        for point in reversed(points):
            if point["Timestamp"] < cutoff - SLACK:
                break
            if point["Timestamp"] >= cutoff:
                recent.append(point)
    return recent


def _on_loop(delay: float, fn) -> None:
    asyncio.get_running_loop().call_later(delay, fn)  # RuntimeError off the event loop


def install(clock=time.monotonic, schedule=_on_loop) -> None:
    """Replace MiniStack's alarm evaluation (module functions of ministack.services.cloudwatch)."""
    from ministack.services import cloudwatch as cw

    state = {"last": float("-inf"), "scheduled": False}

    def evaluate(alarm: dict) -> None:
        ns, mn = alarm.get("Namespace"), alarm.get("MetricName")
        if not ns or not mn:
            return
        recent = window(cw._metrics, ns, mn, time.time() - alarm.get("Period", 60) * alarm.get("EvaluationPeriods", 1))
        if not recent:
            return
        # from here on, MiniStack's _evaluate_alarm as it is
        stats = cw._calc_stats(recent)
        stat_name = alarm.get("ExtendedStatistic") or alarm.get("Statistic", "Average")
        val = cw._stat_value(stats, stat_name, recent)
        if val is None:
            return
        threshold = alarm.get("Threshold", 0)
        op = alarm.get("ComparisonOperator", "")
        breaching = {
            "GreaterThanOrEqualToThreshold": val >= threshold,
            "GreaterThanThreshold": val > threshold,
            "LessThanThreshold": val < threshold,
            "LessThanOrEqualToThreshold": val <= threshold,
            "GreaterThanUpperThreshold": val > threshold,
            "LessThanLowerThreshold": val < threshold,
            "LessThanLowerOrGreaterThanUpperThreshold": val < threshold,
        }.get(op, False)
        old_state, new_state = alarm["StateValue"], "ALARM" if breaching else "OK"
        if old_state != new_state:
            reason = f"Threshold Crossed: {stat_name} {val} {op} {threshold}"
            alarm["StateValue"] = new_state
            alarm["StateReason"] = reason
            alarm["StateUpdatedTimestamp"] = int(time.time())
            cw._record_history(alarm["AlarmName"], old_state, new_state, reason)
            cw._dispatch_alarm_actions(alarm, old_state, new_state, reason)
            cw._evaluate_parent_alarms(alarm)

    def evaluate_all() -> None:
        state["last"], state["scheduled"] = clock(), False
        for alarm in list(cw._alarms.values()):
            try:
                evaluate(alarm)
            except Exception:
                cw.logger.debug("alarm eval error", exc_info=True)

    def after_put() -> None:
        wait = state["last"] + EVERY - clock()
        if wait <= 0:
            evaluate_all()
            return
        if state["scheduled"]:
            return
        try:
            schedule(wait, evaluate_all)
        except RuntimeError:  # not on the event loop (a caller in a thread): evaluate now, as MiniStack would
            evaluate_all()
            return
        state["scheduled"] = True

    cw._evaluate_alarm = evaluate
    cw._evaluate_all_alarms = after_put
    evict = cw._evict_old_metrics
    evicted = {"last": float("-inf")}

    def evict_now_and_then() -> None:
        if clock() - evicted["last"] >= EVICT_EVERY:
            evicted["last"] = clock()
            evict()

    cw._evict_old_metrics = evict_now_and_then
