"""`alap serve`: Alap under gunicorn with aiohttp's worker, one app per worker process.

    alap serve                       # what the Procfile runs: `web: alap serve`
    WEB_CONCURRENCY=4 alap serve     # four worker processes on 0.0.0.0:$PORT (needs REDIS_URL)

`serve()` checks everything in the master before anything forks (settings, WEB_CONCURRENCY,
the in-memory store's one-process limit, every flow) and then runs gunicorn in this process
through a `BaseApplication` subclass: no shell, no second config file. Each worker calls
`create_app` after the fork, inside its own event loop, so the Redis pool, the aiohttp session
for `/ussd/send` and the httpx clients of the upstreams belong to one process and are never
shared. The master keeps no client: the upstream clients built to validate the flows are
closed before the fork.

Graceful shutdown (SIGTERM to the master, or to the whole process group as Heroku does): the
master closes its copy of the listening socket and sends SIGTERM to the workers; each worker at
once stops its listening socket (new connections are refused), closes idle keep-alive
connections, lets the requests in progress finish, waits for the hops in flight to compute,
save and send their screens (`create_app`'s shutdown drain), closes its clients and exits. The
master exits 0 when the workers are gone, or kills them after `GRACEFUL_TIMEOUT` seconds.

Stand-alone gunicorn works too (same worker, settings from the environment):

    gunicorn server.serving:app_factory --worker-class server.serving.AlapWebWorker --bind 0.0.0.0:8080
"""
from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from .config import ConfigError, Settings, load_settings

# gunicorn is imported only after WEB_CONCURRENCY was checked: gunicorn.config parses it at
# import time and would fail with a traceback on a bad value.

if TYPE_CHECKING:
    from aiohttp import web

DEFAULT_WORKERS = 1  # explicit scale-out: set WEB_CONCURRENCY to the number of cores (needs REDIS_URL)
MAX_WORKERS = 64
GRACEFUL_TIMEOUT = 20  # s from SIGTERM to SIGKILL of a worker; its hop drain is bounded at 8 s
WORKER_TIMEOUT = 30  # s a worker's event loop may stay blocked before the master replaces it
KEEPALIVE = 75  # s an idle keep-alive connection stays open (longer than common LB idle timeouts)
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


# -- workers -----------------------------------------------------------------------------------
class _AlapWorker:
    """Two adjustments to aiohttp's gunicorn worker.

    SIGTERM: aiohttp's worker notices it only at its next one-second heartbeat; this wakes
    it at once, so it stops accepting (and starts draining) as soon as the signal arrives.

    Sockets: the event loop gets the listening sockets themselves, not gunicorn's wrappers.
    uvloop detaches a real socket when its server closes; a wrapper it closes a second time
    after libuv already closed the descriptor (an EBADF line in the log at every shutdown).
    """

    def init_process(self) -> None:
        self.sockets = [getattr(sock, "sock", sock) for sock in self.sockets]  # type: ignore[has-type]
        super().init_process()  # type: ignore[misc]

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)  # type: ignore[misc]  # alive = False
        wake = getattr(self, "_notify_waiter_done", None)
        if wake is not None:
            wake()


_WORKER_CLASSES: dict[str, type] = {}


def _worker_classes() -> dict[str, type]:
    """AlapWebWorker (asyncio) and AlapUVLoopWebWorker (uvloop), made on first use."""
    if not _WORKER_CLASSES:
        from aiohttp.worker import GunicornUVLoopWebWorker, GunicornWebWorker

        for name, base, doc in (("AlapWebWorker", GunicornWebWorker, "aiohttp's gunicorn worker (asyncio)."),
                                ("AlapUVLoopWebWorker", GunicornUVLoopWebWorker,
                                 "aiohttp's gunicorn worker on uvloop (when uvloop is installed: `.[fast]`).")):
            cls = type(name, (_AlapWorker, base), {"__doc__": doc, "__module__": __name__})
            _WORKER_CLASSES[name] = cls
    return _WORKER_CLASSES


def __getattr__(name: str) -> Any:  # `--worker-class server.serving.AlapWebWorker` (stand-alone gunicorn)
    if name in ("AlapWebWorker", "AlapUVLoopWebWorker"):
        return _worker_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def worker_class() -> type:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return _worker_classes()["AlapWebWorker"]
    return _worker_classes()["AlapUVLoopWebWorker"]


# -- checks before the fork --------------------------------------------------------------------
def web_concurrency(environ: "os._Environ[str] | dict[str, str]" = os.environ) -> int:
    raw = environ.get("WEB_CONCURRENCY", "").strip()
    if not raw:
        return DEFAULT_WORKERS
    try:
        workers = int(raw)
    except ValueError:
        workers = 0
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"WEB_CONCURRENCY: must be a whole number from 1 to {MAX_WORKERS} (got {raw!r})")
    return workers


def check_workers(settings: Settings, workers: int) -> None:
    if workers > 1 and not settings.redis_url:
        raise ConfigError(f"WEB_CONCURRENCY={workers} needs REDIS_URL (the in-memory store is per process)")


def check_app(settings: Settings) -> None:
    """Build the app exactly as each worker will (every flow, template and catalog is loaded
    and checked: raises FlowErrors), run `alap check`'s gate on it (server/tooling/check.py:
    an untranslated msgid, an undefined variable, a screen that shows no option... a Bengali
    subscriber must never get English or a broken screen), then close the clients it made.
    They never connected (connections open on first use, in the workers' `_resources`), and
    none survives into the fork."""
    from .app import ENGINE, STORE, UPSTREAMS, create_app
    from .engine.errors import FlowErrors
    from .tooling.check import serving_problems

    app = create_app(settings)
    problems = serving_problems(settings, app[ENGINE].actions)

    async def close() -> None:
        await app[UPSTREAMS].aclose()
        await app[STORE].close()

    asyncio.run(close())
    if problems:
        raise FlowErrors(problems)


# -- metrics across processes ------------------------------------------------------------------
def prepare_metrics_dir(environ: "os._Environ[str] | dict[str, str]" = os.environ) -> Path | None:
    """prometheus-client's multiprocess mode: every worker writes its samples to files in one
    directory and `/metrics` (answered by any worker) adds them up. The variable must be set
    before prometheus_client is imported. An operator's directory is emptied (stale files
    would be counted); otherwise a private one is made and returned, to be removed on exit."""
    configured = environ.get(METRICS_ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        return None
    made = Path(tempfile.mkdtemp(prefix="alap-metrics-"))
    environ[METRICS_ENV] = str(made)
    return made


def _mark_worker_dead(arbiter: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


# -- gunicorn ----------------------------------------------------------------------------------
def redacting_logger_class() -> type:
    """gunicorn's logger with the secrets redacted from its error log (a worker's crash report
    may quote a URL or an upstream's answer), like every other line (server/logs.py)."""
    from gunicorn.glogging import Logger

    from .logs import redact_handlers

    class RedactingLogger(Logger):
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for logger in (self.error_log, self.access_log):
                redact_handlers(logger)

    return RedactingLogger


def gunicorn_options(settings: Settings, workers: int, *, on_exit: Callable[[Any], None] | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bind": [f"0.0.0.0:{settings.port}"],
        "workers": workers,
        "worker_class": worker_class(),
        "preload_app": False,  # create_app runs in each worker, after the fork
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "timeout": WORKER_TIMEOUT,
        "keepalive": KEEPALIVE,
        "accesslog": None,  # one `ussd_hop` JSON line per hop is the access log
        "errorlog": "-",  # gunicorn's own lines (boot, worker exits, signals) go to stderr
        "loglevel": settings.log_level,
        "proc_name": "alap",
        "child_exit": _mark_worker_dead,
        "logger_class": redacting_logger_class(),
        # gunicorn >= 24 opens a control socket at a fixed path per user: two servers on one
        # host (or a test starting two) would fight over it. Alap needs none.
        "control_socket_disable": True,
    }
    if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK):
        options["worker_tmp_dir"] = "/dev/shm"  # heartbeat files off a possibly slow disk (containers)
    if on_exit is not None:
        options["on_exit"] = on_exit
    return options


def run_gunicorn(settings: Settings, options: dict[str, Any]) -> None:
    """gunicorn in this process (a BaseApplication: configuration from a dict, no config file,
    no command line parsing), the app built by each worker after the fork. Returns never:
    the master exits through SystemExit (0 after SIGTERM/SIGINT)."""
    from gunicorn.app.base import BaseApplication

    class AlapApplication(BaseApplication):
        def load_config(self) -> None:
            known = self.cfg.settings  # type: ignore[union-attr]
            for key, value in options.items():
                if key in known:  # tolerate settings an older gunicorn does not have
                    self.cfg.set(key, value)  # type: ignore[union-attr]

        def load(self) -> Callable[[], Awaitable["web.Application"]]:
            async def factory() -> "web.Application":
                from .app import create_app

                return create_app(settings)

            return factory

    AlapApplication(prog="alap serve").run()


def serve(settings: Settings, *, banner: bool = True) -> int:
    """Check everything, then run gunicorn until SIGTERM/SIGINT (exits through SystemExit).
    Raises ConfigError (one line) or FlowErrors (every problem) before anything starts."""
    import structlog

    from .bdapps.callers import CallerPolicy, unrestricted_warning
    from .logs import setup_logging

    workers = web_concurrency()
    check_workers(settings, workers)
    setup_logging(settings.log_level, json=True, secrets=settings.secrets())
    metrics_dir = prepare_metrics_dir()
    master = os.getpid()

    def remove_metrics_dir(_arbiter: Any = None) -> None:
        if metrics_dir is not None and os.getpid() == master:
            shutil.rmtree(metrics_dir, ignore_errors=True)

    try:
        check_app(settings)
    except BaseException:
        remove_metrics_dir()
        raise
    warning = unrestricted_warning(CallerPolicy.from_settings(settings.bdapps_allowed_ips, settings.trusted_proxies))
    if warning:  # once, in the master: the workers inherit the settings, not the warning
        structlog.get_logger("alap.serve").warning("callers_unrestricted", detail=warning)
    if banner:
        print(f"alap: serving on :{settings.port} ({workers} worker{'s' if workers > 1 else ''})", flush=True)
    run_gunicorn(settings, gunicorn_options(settings, workers, on_exit=remove_metrics_dir))
    return 0


# -- stand-alone gunicorn ----------------------------------------------------------------------
async def app_factory() -> "web.Application":
    """For `gunicorn server.serving:app_factory`: settings from the environment, checked as
    `alap serve` checks them (a bad setting fails the worker's boot, and gunicorn stops).
    Set PROMETHEUS_MULTIPROC_DIR yourself in this mode for /metrics across workers."""
    from .app import create_app
    from .logs import setup_logging

    settings = load_settings()
    settings.require_production()
    setup_logging(settings.log_level, json=True, secrets=settings.secrets())
    return create_app(settings)
