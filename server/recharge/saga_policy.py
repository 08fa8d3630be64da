"""The recharge saga's timing and bounds (settings: ALAP_RECHARGE_* in config.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

@dataclass(frozen=True)
class SagaPolicy:
    """Timing and bounds (settings: ALAP_RECHARGE_* in config.py)."""

    retry_delay: float = 5.0  # first wait after a passing error (doubles per attempt)
    retry_max_delay: float = 300.0
    poll_delay: float = 5.0  # first MRCSTATUS poll after a submission (doubles per poll)
    poll_max_delay: float = 120.0
    poll_timeout: float = 3600.0  # SUBMITTED for longer than this without a final status -> NEEDS_REVIEW
    give_up_after: float = 1800.0  # passing errors in one state for this long -> stop (see docs)
    max_unknown: int = 5  # unknown outcomes of one money call -> NEEDS_REVIEW
    max_step_errors: int = 5  # consecutive unexpected errors in steps of one record -> NEEDS_REVIEW
    check_wallet: bool = True  # eCare BLCK before debiting
    jitter: float = 0.1  # +0..10% on every delay, so many records do not retry in lockstep

    @classmethod
    def from_settings(cls, settings: Any) -> "SagaPolicy":
        def get(name: str, default: Any) -> Any:
            value = getattr(settings, name, None)
            return default if value is None else value

        d = cls()
        return cls(retry_delay=float(get("recharge_retry_delay", d.retry_delay)),
                   retry_max_delay=float(get("recharge_retry_max_delay", d.retry_max_delay)),
                   poll_delay=float(get("recharge_poll_delay", d.poll_delay)),
                   poll_max_delay=float(get("recharge_poll_max_delay", d.poll_max_delay)),
                   poll_timeout=float(get("recharge_poll_timeout", d.poll_timeout)),
                   give_up_after=float(get("recharge_give_up_after", d.give_up_after)),
                   max_unknown=int(get("recharge_max_unknown", d.max_unknown)))
