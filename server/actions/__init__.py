"""The named operations flows may call. `build_registry` is the one place they are listed."""
from __future__ import annotations

from ..engine.actions import ActionRegistry
from .builtin import register_builtin


def build_registry() -> ActionRegistry:
    registry = ActionRegistry()
    register_builtin(registry)
    return registry
