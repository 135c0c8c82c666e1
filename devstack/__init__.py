"""The local stack's runtimes (embedded, compose, LocalStack): starting, stopping and reading a stack. The commands people
type are `python -m ops up|down|status|logs|train|...` (ops/__main__.py), which the Makefile calls."""

from __future__ import annotations

from devstack.config import StackConfig
from devstack.runtime import Runtime


def runtime_for(cfg: StackConfig) -> Runtime:
    """The runtime `cfg` names (STACK=, or the one recorded by the last `make up`), else compose where a
    container engine answers, else embedded."""
    from devstack.compose import Compose
    from devstack.embedded import Embedded
    from devstack.runtime import engine_answers

    if cfg.stack == "compose":
        return Compose(cfg)
    if cfg.stack == "embedded":
        return Embedded(cfg)
    return Compose(cfg) if engine_answers() else Embedded(cfg)
