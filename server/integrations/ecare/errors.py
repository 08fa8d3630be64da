"""eCare's typed errors, on top of integrations/base.py."""
from __future__ import annotations

from server.integrations.base import UpstreamAuthError, UpstreamRejected, UpstreamUnavailable
from server.metrics import register_error_codes

UPSTREAM = "ecare"


class ECareAuthError(UpstreamAuthError):
    """Credentials refused ("Login Failed"). Never retryable."""


class ECareInvalid(UpstreamRejected):
    """eCare did not understand the call (INVALID SERVICE). A bug of ours: not retryable."""


class ECareMaintenance(UpstreamUnavailable):
    """"Server Maintenance Mode Running": nothing was done, try again later."""


class ECareRejected(UpstreamRejected):
    """A definitive refusal of this recharge (REJECT, FAILED): no money moved, not retryable."""


class ECareLowBalance(ECareRejected):
    """Our eCare wallet cannot cover the recharge. Not retryable until the wallet is topped up."""


class ECareDuplicate(UpstreamRejected):
    """The refid was already used. This submission was refused, but the ORIGINAL one may have
    been applied: ask `recharge_status(refid)`, never resubmit under a new refid blindly."""


class ECareInvalidRef(UpstreamRejected):
    """MRCSTATUS knows no recharge under this refid: it never reached eCare's books."""


# Every code the errors above carry (the answer's STATUS / RECHARGE_STATUS words), for metrics.
register_error_codes(["INVALID_SERVICE", "MAINTENANCE", "INVALID", "LOGIN_FAILED", "FAILED", "REJECT", "DUPLICATE",
                      "LOWBALANCE", "INVALIDREF"])
