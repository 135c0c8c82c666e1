"""The local stack: `python -m devstack up|down|status|logs|train|...` (the Makefile calls nothing else)."""

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
