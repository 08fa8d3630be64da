"""`python -m server ...` is `alap ...`: the one entry point (server/cli.py's `main`)."""
from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
