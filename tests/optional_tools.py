"""System programs some tests need but `pip install` cannot provide (Debian's Chromium, Graphviz).

Tests never install anything: only .ci/run installs system packages. Outside CI a missing program
skips the test with one line saying what to install; under CI (`CI=true`, which .ci/run sets)
it is a failure, so CI never passes by skipping."""
from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require(program: str, package: str, needed_for: str) -> str:
    """The path of `program` (a name on PATH or an absolute path); skips (fails under CI) without it."""
    path = program if os.path.isabs(program) and os.access(program, os.X_OK) else shutil.which(program)
    if path:
        return path
    why = f"{needed_for} needs {program} (Debian: apt install {package})"
    if in_ci():
        pytest.fail(f"CI: {why}", pytrace=False)
    pytest.skip(why)
