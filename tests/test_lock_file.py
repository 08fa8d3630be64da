"""requirements.lock (what CI, deployments and the README's command 2 install) pins every
dependency that pyproject.toml declares, at a version inside its declared range."""
from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from server.config import REPO_ROOT

REFRESH = "refresh it with the pip-compile command under command 2 in README.md"


def declared() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {})
    return [Requirement(r) for r in [*project["dependencies"], *extras.get("test", []), *extras.get("fast", [])]]


def pinned() -> dict[str, str]:
    text = (REPO_ROOT / "requirements.lock").read_text(encoding="utf-8")
    return {canonicalize_name(name): version
            for name, version in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", text, re.M)}


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = pinned()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"requirements.lock misses {requirement.name}: {REFRESH}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {requirement.name}=={pins[name]}, outside {requirement}: {REFRESH}")
