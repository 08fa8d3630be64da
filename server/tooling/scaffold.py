"""`alap new DIR`: a flow project of one's own, running on the installed package.

The skeleton lives in the package (server/scaffold/): a flow, a template, the catalogs (bn
translated, en the source), conversation tests, a Procfile, `.env.example` and a README with
the same two commands as this repository's. Every `alap` command run from the new folder uses
its flows/, templates/, locales/ and tests/flows/ (server/config.py, `project_root`).
"""
from __future__ import annotations

import shutil
from pathlib import Path

SKELETON = Path(__file__).resolve().parent.parent / "scaffold"


class ScaffoldError(Exception):
    """One line saying why the project was not created."""


def scaffold(directory: str | Path) -> str:
    """Create the project; returns what to print. Never overwrites anything."""
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} already exists and is not an empty folder; nothing was written")
    shutil.copytree(SKELETON, target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    return "\n".join([f"alap new: created {target} ({len(files)} files)", *[f"  {f}" for f in files], "",
                      "next:", f"  cd {target}", "  alap dev          # then `alap sim` in another terminal,",
                      "                    # or open http://127.0.0.1:8080/", "  alap check --strict && alap test"])
