"""A worker's lease on one ledger record, kept alive across a saga step."""
from __future__ import annotations

from server.store.ledger import Ledger, LeaseLost, RechargeLease


class RechargeLeaseKeeper:
    """A worker's lease on one record, renewed before every outbound money call."""

    def __init__(self, ledger: Ledger, lease: RechargeLease, seconds: float) -> None:
        self.ledger = ledger
        self.lease = lease
        self.seconds = seconds

    async def hold(self) -> None:
        renewed = await self.ledger.renew(self.lease, self.seconds)
        if renewed is None:
            raise LeaseLost(self.lease.record_id)
        self.lease = renewed
