"""The `alap` command line: serve, dev, sim, push, check, test, graph, translate, new, flows,
worker, ledger, broadcast. Every command works from a flow project's folder (`alap new`) with no
environment variables: flows, templates, locales and tests/flows are the folder's (server/config.py)."""
from __future__ import annotations

import argparse
import asyncio
import sys

from .cli_common import fail, redis_store, run_on_redis
from .config import ConfigError, Settings, load_settings
from .engine.errors import FlowErrors


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _run(app_factory, settings: Settings, banner: str, *, json_logs: bool) -> int:
    from aiohttp import web

    from .logs import setup_logging

    setup_logging(settings.log_level, json=json_logs, secrets=settings.secrets())
    try:
        app = app_factory(settings)
    except FlowErrors as exc:
        print(str(exc), file=sys.stderr)
        return fail(f"{len(exc.problems)} problem(s) in flows or catalogs; not starting")
    _use_uvloop()
    print(banner, flush=True)
    web.run_app(app, host="0.0.0.0", port=settings.port, access_log=None, print=None, shutdown_timeout=10)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    # gunicorn + aiohttp workers (WEB_CONCURRENCY); server.serving imports no app code at import
    # time, so it can set PROMETHEUS_MULTIPROC_DIR before prometheus_client is loaded.
    from .serving import serve

    settings = load_settings()
    settings.require_production()
    try:
        return serve(settings)
    except FlowErrors as exc:
        print(str(exc), file=sys.stderr)
        return fail(f"{len(exc.problems)} problem(s) in flows or catalogs; not starting")


def cmd_dev(args: argparse.Namespace) -> int:
    from .dev import create_dev_app

    settings = load_settings()
    if args.port:
        settings = settings.model_copy(update={"port": args.port})
    store = "redis" if settings.redis_url else "memory"
    banner = (f"alap dev: http://127.0.0.1:{settings.port}  (store: {store}, sandbox gateway at /sandbox/bdapps)\n"
              f"  dial the demo in a browser:  http://127.0.0.1:{settings.port}/simulator\n"
              f"  or from another terminal:    alap sim --url http://127.0.0.1:{settings.port}")
    return _run(create_dev_app, settings, banner, json_logs=False)


def cmd_check(args: argparse.Namespace) -> int:
    from .actions import build_registry
    from .tooling.check import format_json, format_text, has_errors, run_check
    from .upstreams import Upstreams

    settings = load_settings()
    upstreams = Upstreams.from_settings(settings)  # only for the action names: opens no connection
    try:
        findings = run_check(settings, build_registry(upstreams))
    finally:
        asyncio.run(upstreams.aclose())
    errors = sum(f.severity == "error" for f in findings)
    if args.format == "json":
        print(format_json(findings))
    elif findings:
        print(format_text(findings))
    print(f"alap check: {errors} error(s), {len(findings) - errors} warning(s)", file=sys.stderr)
    return 1 if has_errors(findings) or (args.strict and findings) else 0


def cmd_test(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .config import project_root
    from .tooling.convtest import default_files, run_files

    settings = load_settings()
    if args.verbose:
        from .logs import setup_logging

        setup_logging(settings.log_level, json=False)
    else:  # the engine logs the canned timeouts and failures: noise between the results
        import logging

        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    files = [Path(f) for f in args.files] or default_files(project_root())
    if not files:
        return fail(f"no conversation test files in {project_root() / 'tests' / 'flows'} (*.yaml)")
    try:
        return asyncio.run(run_files(settings, files, keyword=args.k, verbose=args.verbose))
    except FlowErrors as exc:  # the flows under test do not load: nothing can run
        print(str(exc), file=sys.stderr)
        return fail(f"{len(exc.problems)} problem(s) in flows; run `alap check`")


def cmd_graph(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .actions import build_registry
    from .engine.loader import parse_flow
    from .render.environment import Renderer
    from .tooling.graph import find_flow_file, to_dot, to_mermaid
    from .upstreams import Upstreams

    settings = load_settings()
    path = find_flow_file(Path(settings.flows_dir), args.flow)
    if path is None:
        return fail(f"no flow {args.flow!r} in {settings.flows_dir} (give a flow name or a .yaml path)")
    upstreams = Upstreams.from_settings(settings)  # only for the action names: opens no connection
    try:
        renderer = Renderer(settings.templates_dir, settings.locales_dir)
        flow, problems = parse_flow(path, path.read_text(encoding="utf-8"), renderer, build_registry(upstreams))
    finally:
        asyncio.run(upstreams.aclose())
    if flow is None or problems:
        print("\n".join(str(p) for p in problems), file=sys.stderr)
        return fail(f"{path}: {len(problems)} problem(s); run `alap check`")
    text = to_dot(flow) if args.format == "dot" else to_mermaid(flow)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from .tooling.translate import translate

    settings = load_settings()
    print(translate(settings.flows_dir, settings.templates_dir, settings.locales_dir, engine=args.engine))
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from .tooling.scaffold import ScaffoldError, scaffold

    try:
        print(scaffold(args.directory))
    except ScaffoldError as exc:
        return fail(str(exc))
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from .terminal_phone import run_sim, run_sms

    if args.sms is not None:
        return asyncio.run(run_sms(args.url, args.address, args.sms))
    return asyncio.run(run_sim(args.url, args.address, args.code, args.script))


def cmd_push(args: argparse.Namespace) -> int:
    from .terminal_phone import run_push

    variables = {}
    for item in args.var:
        name, sep, value = item.partition("=")
        if not sep or not name:
            return fail(f"--var takes name=value, got {item!r}")
        variables[name] = value
    token = args.token or load_settings().admin_token
    if not token:
        return fail("ALAP_ADMIN_TOKEN (or --token) is needed to push")
    return asyncio.run(run_push(args.url, token, args.address, args.flow, variables))


def cmd_flows(args: argparse.Namespace) -> int:
    from .tooling.flow_versions import flows_report

    settings = load_settings()
    try:
        return run_on_redis(lambda: flows_report(settings, sys.stdout, as_json=args.json), "REDIS_URL is unreachable")
    except FlowErrors as exc:
        print(str(exc), file=sys.stderr)
        return fail(f"{len(exc.problems)} problem(s) in flows")


def cmd_worker(args: argparse.Namespace) -> int:
    from .logs import setup_logging
    from .recharge.worker import check_worker_settings, run_worker

    settings = load_settings()
    check_worker_settings(settings)
    setup_logging(settings.log_level, json=True, secrets=settings.secrets())
    _use_uvloop()
    return asyncio.run(run_worker(settings, worker_id=args.id))


def cmd_ledger(args: argparse.Namespace) -> int:
    from .recharge.operator import ledger_command
    from .store.ledger import open_ledger

    settings = load_settings()
    if not settings.redis_url:
        return fail("REDIS_URL is required by `alap ledger` (the ledger lives in Redis)")

    async def go() -> int:
        async with redis_store(settings) as store:
            return await ledger_command(open_ledger(store), args.action, args.id, state=args.state,
                                        limit=args.limit, note=args.note, by=args.by, as_json=args.json)

    return run_on_redis(go, "the ledger's Redis is unreachable")


def build_parser() -> argparse.ArgumentParser:
    """Every command and option, each with its help text (tests/tooling/test_project_scaffold.py)."""
    parser = argparse.ArgumentParser(prog="alap", description="USSD and SMS conversational app server")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="production server on PORT (gunicorn, WEB_CONCURRENCY workers); refuses to "
                                 "start on a bad setting or any `alap check` error").set_defaults(func=cmd_serve)
    dev = sub.add_parser("dev", help="server + sandbox fakes, in-memory store unless REDIS_URL; reloads flows, "
                                     "templates and catalogs on save (a check error keeps the last good version)")
    dev.add_argument("--port", type=int, default=None, help="listen port (default: PORT, else 8080)")
    dev.set_defaults(func=cmd_dev)
    check = sub.add_parser("check", help="validate flows, templates and catalogs")
    check.add_argument("--format", choices=("text", "json"), default="text",
                       help="json: a list of {file, line, col, severity, message} for editors and CI")
    check.add_argument("--strict", action="store_true", help="exit non-zero on warnings too")
    check.set_defaults(func=cmd_check)
    sim = sub.add_parser("sim", help="a terminal phone dialling a running `alap dev`")
    sim.add_argument("--url", default="http://127.0.0.1:8080",
                     help="the running `alap dev` to dial (default: %(default)s)")
    sim.add_argument("--address", default="tel:8801812345678", help="the subscriber address to dial from")
    sim.add_argument("--code", default="*213#", help="the USSD code (shortcuts like *213*1# work)")
    sim.add_argument("--script", default=None, help="comma-separated replies to send without prompting")
    sim.add_argument("--sms", default=None, metavar="TEXT", help="text this SMS (e.g. 'TRACK ECR...') and show the reply")
    sim.set_defaults(func=cmd_sim)
    push = sub.add_parser("push", help="start a flow on a subscriber's phone (USSD mt-init, SMS fallback)")
    push.add_argument("--url", default="http://127.0.0.1:8080", help="the running Alap server (default: %(default)s)")
    push.add_argument("--address", required=True, help="the subscriber address, e.g. tel:8801812345678")
    push.add_argument("--flow", required=True, help="the flow to start, e.g. parcel_notice")
    push.add_argument("--var", action="append", default=[], help="a flow variable as name=value (repeatable)")
    push.add_argument("--token", default=None, help="the admin token (default: ALAP_ADMIN_TOKEN)")
    push.set_defaults(func=cmd_push)
    test = sub.add_parser("test", help="run conversation tests (YAML dialogues) against the flows")
    test.add_argument("files", nargs="*", help="test files (default: the project's tests/flows/*.yaml)")
    test.add_argument("-k", default=None, help="only dialogues whose name contains this text")
    test.add_argument("-v", "--verbose", action="store_true", help="list passing dialogues too")
    test.set_defaults(func=cmd_test)
    graph = sub.add_parser("graph", help="draw a flow's states and transitions")
    graph.add_argument("flow", help="a flow name (demo) or a flow file (flows/demo.yaml)")
    graph.add_argument("--format", choices=("mermaid", "dot"), default="mermaid",
                       help="mermaid (for Markdown, the default) or dot (Graphviz)")
    graph.add_argument("-o", "--output", default=None, help="write to this file instead of stdout")
    graph.set_defaults(func=cmd_graph)
    translate = sub.add_parser("translate", help="extract the project's texts into locales/messages.pot and merge "
                                                 "them into every catalog, saying what is new, fuzzy or obsolete")
    translate.add_argument("--engine", action="store_true",
                           help="the engine's own catalogs in the package instead (for Alap's maintainers)")
    translate.set_defaults(func=cmd_translate)
    new = sub.add_parser("new", help="scaffold a flow project (flows, templates, locales, tests, Procfile) that "
                                     "runs on the installed package")
    new.add_argument("directory", help="the folder to create (must not exist, or be empty)")
    new.set_defaults(func=cmd_new)
    flows = sub.add_parser("flows", help="each flow's current and older live versions, with their session counts")
    flows.add_argument("--json", action="store_true", help="JSON instead of a table")
    flows.set_defaults(func=cmd_flows)
    worker = sub.add_parser("worker", help="run the recharge worker (the durable money queue in Redis)")
    worker.add_argument("--id", default=None, help="this worker's id, unique among live workers "
                                                   "(default: ALAP_WORKER_ID, $DYNO or host:pid)")
    worker.set_defaults(func=cmd_worker)
    ledger = sub.add_parser("ledger", help="the recharge ledger: list, show ID, resolve ID --note ...")
    ledger.add_argument("action", nargs="?", choices=("list", "show", "resolve"), default="list",
                        help="list records (default), show one, or resolve one")
    ledger.add_argument("id", nargs="?", default=None, help="a record ID (show, resolve)")
    ledger.add_argument("--state", default=None, help="only records in this state (e.g. REFUND_REQUIRED)")
    ledger.add_argument("--limit", type=int, default=50, help="at most this many records (newest first)")
    ledger.add_argument("--note", default=None, help="resolve: what was done (refund reference...)")
    ledger.add_argument("--by", default=None, help="resolve: who did it")
    ledger.add_argument("--json", action="store_true", help="JSON instead of a table")
    ledger.set_defaults(func=cmd_ledger)
    from .broadcast.arguments import add_broadcast_parser

    add_broadcast_parser(sub)
    for choice in sub._choices_actions:  # `alap CMD --help` opens with what the command does
        sub.choices[choice.dest].description = choice.help
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130
