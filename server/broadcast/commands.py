"""`alap broadcast sms|ussd|status|cancel`: the command line's glue (the parser is in
server/broadcast/arguments.py). Bad input gets one line and changes nothing; progress goes to
stderr. What only sending or a dry run needs (the senders, aiohttp, the flows) is imported
where it is used: `status`, `cancel` and a refused command start in about half the time."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any, Awaitable, Callable

import jinja2

from server.cli_common import fail, redis_store, run_on_redis
from server.config import load_settings

from .loading import ScheduleError, create_broadcast, fingerprint, format_dhaka, parse_at
from .progress import Progress, summary
from .recipients import TEL_ALL, BadLine, RecipientsFileError
from .runner import MAX_BATCH, Busy
from .store import CANCELLED, DONE, PARKED, SCHEDULED, BroadcastExists, BroadcastStore, Spec

def _print_bad(source: str):
    def show(bad: BadLine) -> None:
        print(f"{source}:{bad.line}: {bad.problem} (skipped)", file=sys.stderr)
    return show


def cmd_broadcast_send(args: argparse.Namespace) -> int:
    settings = load_settings()
    to_all = args.to.strip().lower().replace(" ", "") == TEL_ALL
    if to_all and args.kind == "ussd":
        return fail("tel:all is for SMS only (BDApps sends one SMS to the subscribed base)")
    if to_all and args.route not in ("auto", "bdapps"):
        return fail(f"tel:all reaches BDApps' subscribed base: only the bdapps route can send it, not {args.route}")
    route = "bdapps" if to_all else args.route
    source = TEL_ALL if to_all else os.path.abspath(args.to)
    if not to_all and not os.path.isfile(source):
        return fail(f"{args.to}: no such file")
    if args.batch is not None and not 1 <= args.batch <= MAX_BATCH:
        return fail(f"--batch must be between 1 and {MAX_BATCH}")
    variables: dict[str, str] = {}
    for item in getattr(args, "var", []):
        key, sep, value = item.partition("=")
        if not sep or not key:
            return fail(f"--var takes name=value, got {item!r}")
        variables[key] = value
    try:
        at = parse_at(args.at) if args.at else None
    except ScheduleError as exc:
        return fail(str(exc))
    lang = args.lang or settings.default_language
    text = (args.text or "").strip() if args.kind == "sms" else None
    if args.kind == "sms" and not text:
        return fail("--text is empty")
    from .context import BroadcastContext
    from .sms_runner import compile_text

    if args.kind == "sms":
        from server.render.environment import Renderer

        try:
            template = compile_text(Renderer(settings.templates_dir, settings.locales_dir, strict=True), text, lang)
        except jinja2.TemplateSyntaxError as exc:
            return fail(f"--text: line {exc.lineno}: {exc.message}")
        problem = _check_template(source, template, lang) if not to_all else None
        if problem:
            return fail(problem)
    if args.dry_run:
        return _dry_run(args, settings, source, to_all, route, template if args.kind == "sms" else None, lang)
    if not settings.redis_url:
        return fail("REDIS_URL is required by `alap broadcast` (progress lives in Redis so that nothing is sent twice)")
    if not settings.bdapps_app_id or not settings.bdapps_password:
        return fail("BDAPPS_APP_ID and BDAPPS_PASSWORD are required by `alap broadcast`")
    spec = Spec(name=args.name, kind=args.kind, route=route, text=text, flow=getattr(args, "flow", None),
                vars=variables, lang=args.lang, to_all=to_all, source=source, at=at, created_at=time.time())
    try:
        spec.fingerprint = fingerprint(source, args.kind, route, text or "", spec.flow or "", repr(sorted(variables.items())))
    except OSError as exc:
        return fail(f"{args.to}: cannot read ({exc.strerror})")

    async def go() -> int:
        async with BroadcastContext.open(settings) as context:
            return await _send(args, context, spec)

    try:
        return run_on_redis(go)
    except RecipientsFileError as exc:
        return fail(str(exc))


async def _send(args: argparse.Namespace, context: Any, spec: Spec) -> int:
    if spec.kind == "ussd" and spec.flow not in context.push_service().engine.flows:
        return fail(f"unknown flow {spec.flow!r}")
    try:
        loaded = await create_broadcast(context.bstore, spec, on_bad_line=_print_bad(args.to))
    except BroadcastExists:
        return fail(f"broadcast {spec.name!r} already exists with another FILE, text, flow or route; "
                     f"choose another NAME (see `alap broadcast status {spec.name}`)")
    b = loaded.broadcast
    verb = "created" if loaded.created else "continuing"
    print(f"{spec.name}: {verb}, {b.total:,} recipients" + (f", {b.invalid:,} bad lines skipped" if b.invalid else ""),
          file=sys.stderr)
    if b.state in (DONE, CANCELLED) and not args.retry_unknown:
        print(f"{spec.name}: already {b.state}: {summary(b)}", file=sys.stderr)
        return 0
    if b.state == SCHEDULED and b.not_before and b.not_before > time.time():
        print(f"{spec.name}: scheduled for {format_dhaka(b.not_before)}; `alap worker` will send it", file=sys.stderr)
        return 0
    from .scheduler import default_batch

    progress = Progress(spec.name, b.total, b.cursor)
    runner = context.runner(spec if loaded.created else b.spec, progress=progress,
                            batch=args.batch or default_batch(context.settings))
    try:
        result = await runner.run(spec.name, retry_unknown=args.retry_unknown)
    except Busy as exc:
        return fail(f"broadcast {spec.name!r} is being sent by {exc} right now", 1)
    finally:
        progress.close()
    final = result.broadcast
    if final is not None:
        print(f"{spec.name}: {final.state}: {summary(final)}", file=sys.stderr)
    if result.state == PARKED:
        until = format_dhaka(result.not_before) if result.not_before else "later"
        print(f"{spec.name}: parked until {until} ({result.detail}); `alap worker` continues it", file=sys.stderr)
        return 0
    if result.state not in (DONE, CANCELLED):
        return fail(f"{spec.name}: {result.state}: {result.detail}; run the same command again to continue", 1)
    return 0


def _check_template(source: str, template: jinja2.Template, lang: str) -> str | None:
    """Render the text for the FILE's first recipient: a column the template names but the
    FILE lacks is refused before anything is stored or sent."""
    from .recipients import Recipient, read_recipients

    try:
        for item in read_recipients(source):
            if isinstance(item, Recipient):
                template.render(**item.columns, lang=lang, msisdn=item.address[4:])
                return None
    except RecipientsFileError as exc:
        return str(exc)
    except jinja2.UndefinedError as exc:
        return f"--text: {exc.message} (the CSV's columns are the template's variables)"
    except Exception as exc:  # a filter refusing the first row's value
        return f"--text: {type(exc).__name__}: {exc}"[:200]
    return None


def _dry_run(args: argparse.Namespace, settings: Any, source: str, to_all: bool, route: str,
             template: jinja2.Template | None, lang: str) -> int:
    from server.messaging import RoutingPolicy, build_sms_sender

    from .dry_run import plan_sms, plan_to_all

    if args.kind == "ussd":
        from .recipients import Recipient, read_recipients

        count = bad = 0
        try:
            for item in read_recipients(source):
                if isinstance(item, Recipient):
                    count += 1
                else:
                    bad += 1
                    _print_bad(args.to)(item)
        except RecipientsFileError as exc:
            return fail(str(exc))
        print(f"recipients: {count:,}" + (f" ({bad:,} bad lines skipped)" if bad else ""))
        print(f"USSD mt-init of flow {args.flow} to each; nothing was sent (dry run)")
        return 0
    assert template is not None
    if to_all:
        plan = plan_to_all(template.render(lang=lang, msisdn="").strip())
        for line in plan.lines():
            print(line.replace("recipients: 1", "recipients: the application's whole subscribed base (tel:all)"))
        return 0
    sender = build_sms_sender(settings, None, None)  # for its routes only: nothing is sent
    try:
        plan = plan_sms(source, template, route, RoutingPolicy(sender.policy.order), sender.routes, lang,
                        on_bad_line=_print_bad(args.to))
    except RecipientsFileError as exc:
        return fail(str(exc))
    except jinja2.UndefinedError as exc:
        return fail(f"--text: {exc.message} (the CSV's columns are the template's variables)")
    finally:
        asyncio.run(sender.aclose())
    for line in plan.lines():
        print(line)
    return 0


def _on_store(command: str, work: Callable[[BroadcastStore], Awaitable[int]]) -> int:
    """Run `work` on the broadcasts in Redis for `alap broadcast COMMAND`; one line, never a
    traceback, when Redis is not configured or unreachable."""
    settings = load_settings()
    if not settings.redis_url:
        return fail(f"REDIS_URL is required by `alap broadcast {command}`")
    from .redis_store import open_broadcast_store

    async def go() -> int:
        async with redis_store(settings) as store:
            return await work(open_broadcast_store(store))

    return run_on_redis(go)


def cmd_broadcast_status(args: argparse.Namespace) -> int:
    async def status(bstore: BroadcastStore) -> int:
        names = [args.name] if args.name else await bstore.names()
        if not names:
            print("no broadcasts")
        for name in names:
            b = await bstore.get(name)
            if b is None:
                return fail(f"no broadcast named {name!r}", 1)
            t = b.totals
            when = f" until {format_dhaka(b.not_before)}" if b.not_before and b.state in (SCHEDULED, PARKED) else ""
            print(f"{name} ({b.spec.kind}, route {b.spec.route}): {b.state}{when}"
                  + (f" ({b.detail})" if b.detail else ""))
            print(f"  total {t.total:,}  queued {t.queued:,}  sent {t.sent:,}  delivered {t.delivered:,}  "
                  f"failed {t.failed:,}  opted out {t.opted_out:,}  pending {t.pending:,}  unknown {t.unknown:,}"
                  f"  bad lines {t.invalid:,}" + (f"  slowed {b.slowed}x" if b.slowed else ""))
            if args.bad_lines:
                for line in await bstore.bad_lines(name, 1000):
                    print(f"  {line}")
        return 0

    return _on_store("status", status)


def cmd_broadcast_cancel(args: argparse.Namespace) -> int:
    async def cancel(bstore: BroadcastStore) -> int:
        b = await bstore.get(args.name)
        if b is None:
            return fail(f"no broadcast named {args.name!r}", 1)
        if not await bstore.cancel(args.name, time.time()):
            print(f"{args.name}: already {b.state}")
            return 0
        print(f"{args.name}: cancelled ({b.totals.sent:,} sent before; a request in flight finishes)")
        return 0

    return _on_store("cancel", cancel)
