"""BDApps wire payloads (docs/upstreams.md): inbound bodies decoded strictly, answers built exactly.

Mandatory fields must be present and be strings (an ill-typed id is E1312: docs/upstreams.md);
`encoding` and `version` are optional and accepted as string or number because deployments
differ ("440", "16", "0", 16, or absent). Unknown fields are ignored.
"""
from __future__ import annotations

from typing import Annotated

import msgspec

from ..msisdn import number_of_address, subscriber_key  # noqa: F401 (the transport's names)

NonEmpty = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Text = Annotated[str, msgspec.Meta(max_length=4096)]


class MoReceive(msgspec.Struct):
    """What every mobile-originated callback (USSD and SMS) carries."""

    applicationId: NonEmpty
    sourceAddress: NonEmpty
    message: Text
    requestId: NonEmpty
    encoding: str | int | None = None
    version: str | int | float | None = None


class UssdReceive(MoReceive, kw_only=True):
    sessionId: NonEmpty
    ussdOperation: NonEmpty


class SmsReceive(MoReceive):
    pass


class DeliveryReport(msgspec.Struct):
    destinationAddress: NonEmpty
    requestId: NonEmpty
    deliveryStatus: NonEmpty
    timeStamp: str | None = None
    applicationId: str | None = None


class InvalidRequest(Exception):
    """E1312: the reason is shown to the caller after "Request is Invalid."."""


_decoders: dict[type, msgspec.json.Decoder] = {}


def decode(body: bytes, kind: type[msgspec.Struct]):
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(str(exc)) from None
    except msgspec.DecodeError:
        raise InvalidRequest("Body is not valid JSON") from None


ACK = b'{"statusCode":"S1000","statusDetail":"Success"}'


def error_body(code: str, detail: str) -> bytes:
    return msgspec.json.encode({"statusCode": code, "statusDetail": detail})


def invalid_body(reason: str) -> bytes:
    return error_body("E1312", f"Request is Invalid. {reason}"[:300])


def auth_failed_body(app_id: str) -> bytes:
    shown = app_id[:40]
    return error_body("E1313", f"Authentication failed. No such active application with applicationId {shown}")


TEMPORARY_ERROR = error_body("E1603", "Temporary System Error occurred while delivering your request.")

msisdn_of = number_of_address  # 01XXXXXXXXX for a plain `tel: 8801...` address; None if masked
