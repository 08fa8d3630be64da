"""What `alap check` reports: findings as `file:line:col: [warning: ]message`, collected once each."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..engine.errors import Mark

SOURCE_LANGUAGE = "en"  # msgids are English; its catalog's msgstrs stay empty


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    line: int
    col: int
    severity: str  # "error" or "warning"
    message: str

    def __str__(self) -> str:
        # gcc style, which editors already parse: warnings say so, errors stay as the loader's.
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.col}: {prefix}{self.message}"


class Report:
    def __init__(self) -> None:
        self.findings: dict[Finding, None] = {}  # ordered set: one line per distinct finding
        # (flow, state, variable) already reported from the source: the render failing on the
        # same variable would only say it again.
        self.undefined: set[tuple[str, str, str]] = set()

    def add(self, mark: Mark, message: str, severity: str = "error") -> None:
        self.findings[Finding(mark.file, mark.line, mark.col, severity, message)] = None


def display_path(path: Path | str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def short(text: str, width: int = 30) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 3] + "..."
