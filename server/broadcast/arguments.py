"""The `alap broadcast` argument parser. It imports nothing of Alap at import time (the
commands are loaded when one runs): `alap serve` must set up Prometheus' multiprocess directory
before anything loads prometheus_client (server/serving.py)."""
from __future__ import annotations

import argparse
from typing import Any, Callable

ROUTES = ("auto", "bdapps", "aamarsms", "dinisoft")
MAX_BATCH = 1000  # the same bound as server/broadcast/runner.py


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from . import commands

        return getattr(commands, name)(args)

    return run


def add_broadcast_parser(sub: Any) -> None:
    bc = sub.add_parser("broadcast", help="throttled, resumable SMS / USSD broadcasts (see README 'Broadcasts')")
    bsub = bc.add_subparsers(dest="broadcast_command", required=True, metavar="{sms,ussd,status,cancel}",
                             help="sms: send an SMS to a list; ussd: start a flow on each phone; "
                                  "status: totals; cancel: stop one")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("name", help="the broadcast's name; running it again continues it")
        p.add_argument("--at", default=None, metavar="'YYYY-MM-DD HH:MM'",
                       help="start then (Asia/Dhaka); `alap worker` runs it")
        p.add_argument("--batch", type=int, default=None,
                       help=f"recipients per request (1-{MAX_BATCH}; default: the per-second rate, at most 100)")
        p.add_argument("--retry-unknown", action="store_true",
                       help="send again to recipients whose outcome is unknown (they may get it twice)")
        p.add_argument("--lang", choices=("bn", "en"), default=None)

    sms = bsub.add_parser("sms", help="send an SMS to every number of FILE (or tel:all)")
    common(sms)
    sms.add_argument("--text", required=True, help="the SMS; a Jinja template over the CSV's columns")
    sms.add_argument("--to", required=True, metavar="FILE|tel:all")
    sms.add_argument("--route", choices=ROUTES, default="auto")
    sms.add_argument("--dry-run", action="store_true", help="count recipients, encoding and parts; send nothing")
    sms.set_defaults(func=_command("cmd_broadcast_send"), kind="sms")
    ussd = bsub.add_parser("ussd", help="start a flow (USSD mt-init) on every number of FILE")
    common(ussd)
    ussd.add_argument("--flow", required=True)
    ussd.add_argument("--to", required=True, metavar="FILE")
    ussd.add_argument("--var", action="append", default=[], help="a flow variable as name=value (repeatable)")
    ussd.add_argument("--dry-run", action="store_true", help="count recipients; send nothing")
    ussd.set_defaults(func=_command("cmd_broadcast_send"), kind="ussd", route="bdapps", text=None)
    status = bsub.add_parser("status", help="totals of one broadcast, or of all")
    status.add_argument("name", nargs="?", default=None)
    status.add_argument("--bad-lines", action="store_true", help="also list the FILE's bad lines")
    status.set_defaults(func=_command("cmd_broadcast_status"))
    cancel = bsub.add_parser("cancel", help="stop a broadcast for good (what was sent stays sent)")
    cancel.add_argument("name")
    cancel.set_defaults(func=_command("cmd_broadcast_cancel"))
