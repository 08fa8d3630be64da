"""BDApps status codes (appendix A of the BDApps API; docs/upstreams.md): the MT client
(integrations/bdapps.py) and CAAS (integrations/caas.py) read them the same way."""
from __future__ import annotations

SUCCESS = "S1000"
# Retryable per appendix A: throttling, balance, delivery and temporary errors.
RETRYABLE = frozenset({"E1318", "E1319", "E1326", "E1602", "E1603"})


def is_retryable(code: str) -> bool:
    return code in RETRYABLE
