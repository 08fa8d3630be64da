"""Hop throughput: ussd_airflow 0.0.6 (a Django USSD framework) against Alap, in the same run.

    python bench/ussd_airflow.py [--runs 3] [--users 32] [--seconds 6] [--warmup 2]
                                 [--airflow-workers gthread:4,sync]

Issue 13 asks that Alap serve at least 10x the hops/s of ussd_airflow 0.0.6 at its best single
process. This script measures both on the layout of the benchmark of record (`../shared/bench/`,
see its README): the server under test pinned to core 0, the shared load generator pinned to
core 1, 32 users walking the demo's 3-hop journey `*213#,1,0`, 6 s after 2 s of warm-up.

ussd_airflow is not part of this repository: the script installs it from PyPI into a throwaway
venv outside the repo (`$TMPDIR/alap-bench-airflow-venv`, reused while the pins below match)
and writes a minimal Django project into a temporary directory:

- the journey equivalent to Alap's demo for those inputs: a menu of the same 8 options
  ("Welcome to Alap"), `1` shows the "Enter a mobile number" input screen, `0` goes back to the
  menu (an option of that input screen, the way ussd_airflow expresses "back");
- ussd_airflow's own Africa's Talking view (`ussd.views.AfricasTalkingUssdGateway`), which
  answers `CON ...` / `END ...` synchronously, so the generator runs with `--proto at`;
- sessions as ussd_airflow's quick start says (Django sessions with the PickleSerializer) on
  Django's cache backend in Redis (127.0.0.1:6379, database 13, keys expire after 180 s);
- production-style settings: DEBUG off, no middleware, structlog filtered at INFO (ussd_airflow
  logs two debug lines per hop), a small environment (ussd_airflow copies os.environ into every
  template context).

ussd_airflow 0.0.6 pins Django 2.2.6, which does not run on Python 3.11; Django 3.2 is the
newest it imports with (4.0 removed `force_text`, used by its input screen), so it is installed
with `--no-deps` and the versions below. Its YAML loader (PyConfigure 0.5.9) imports two names
Python 3.10/3.11 removed; the generated settings put them back (two lines, no behaviour change).

It runs under gunicorn with one worker (`--airflow-workers`: `sync` or `gthread:N`; several,
comma-separated, are each measured and the best median is the one compared). Then `alap serve`
is run exactly as bench/hops.py runs it (BDApps protocol, Redis database 12). It prints each run,
the medians and the multiple Alap / ussd_airflow (goal: >= 10), with the load average.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hops import SHARED, add_load_arguments, alap_env, free_port, load, pinned, start, stop, wait_listening  # noqa: E402

VENV = Path(os.environ.get("TMPDIR") or "/tmp") / "alap-bench-airflow-venv"
PINS = [  # Django 3.2 is the newest ussd_airflow 0.0.6 runs with; the rest: newest that go with it
    "Django==3.2.25", "djangorestframework==3.15.1", "django-redis==5.4.0", "redis==5.2.1",
    "PyYAML==6.0.2", "Jinja2==3.1.6", "structlog==25.4.0", "PyStaticConfiguration==0.11.1",
    "PyConfigure==0.5.9", "celery==5.5.3", "django-annoying==0.10.8", "attrs==25.3.0",
    "requests==2.32.4", "gunicorn==23.0.0",
]

SETTINGS = '''\
import collections, collections.abc, inspect, logging
from pathlib import Path

import structlog

# PyConfigure 0.5.9 (ussd_airflow's YAML loader) imports names Python 3.10 and 3.11 removed.
collections.Mapping, collections.MutableMapping = collections.abc.Mapping, collections.abc.MutableMapping
inspect.getargspec = inspect.getfullargspec

HERE = Path(__file__).resolve().parent
SECRET_KEY = "bench"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
                  "rest_framework", "ussd.apps.UssdConfig"]
MIDDLEWARE = []
ROOT_URLCONF = "airflow_bench.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(HERE / "db.sqlite3")}}
USE_TZ = True
CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:6379/13"}}
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
SESSION_SERIALIZER = "django.contrib.sessions.serializers.PickleSerializer"
SESSION_COOKIE_AGE = 180  # the session keys' TTL in Redis
DEFAULT_USSD_SCREEN_JOURNEY = str(HERE / "journey.yml")
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
'''

URLS = '''\
from django.urls import path
from ussd.views import AfricasTalkingUssdGateway

urlpatterns = [path("ussd", AfricasTalkingUssdGateway.as_view())]
'''

WSGI = '''\
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "airflow_bench.settings")
from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
'''

# The demo's screens for *213#, 1, 0 (flows/demo.yaml, English); the other options end at once.
JOURNEY = '''\
initial_screen: main
main:
  type: menu_screen
  text: Welcome to Alap
  options:
    - {text: "Find a number's operator", next_screen: ask_number}
    - {text: Split a bill, next_screen: elsewhere}
    - {text: Track a parcel, next_screen: elsewhere}
    - {text: My balance, next_screen: elsewhere}
    - {text: Offer packs, next_screen: elsewhere}
    - {text: Mobile recharge, next_screen: elsewhere}
    - {text: Language, next_screen: elsewhere}
    - {text: About Alap, next_screen: elsewhere}
ask_number:
  type: input_screen
  text: "Enter a mobile number, like 01812345678:"
  input_identifier: number
  next_screen: number_noted
  options:
    - {text: Back, input_value: "0", input_display: "0. ", next_screen: main}
  validators:
    - {regex: "^01[3-9][0-9]{8}$", text: "Enter a mobile number, like 01812345678:"}
number_noted:
  type: quit_screen
  text: "{{ number }} noted."
elsewhere:
  type: quit_screen
  text: Not part of this benchmark.
'''


def ensure_venv() -> Path:
    """The throwaway venv with ussd_airflow 0.0.6 and the pins; reused while the pins match."""
    stamp = VENV / "alap-bench-pins.txt"
    wanted = "\n".join(["ussd-airflow==0.0.6", *PINS])
    if stamp.exists() and stamp.read_text() == wanted:
        return VENV
    print(f"installing ussd-airflow 0.0.6 into {VENV} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *PINS], check=True)
    subprocess.run([*pip, "--no-deps", "ussd-airflow==0.0.6"], check=True)  # its own pins: Django 2.2.6
    stamp.write_text(wanted)
    return VENV


def write_project(root: Path) -> None:
    package = root / "airflow_bench"
    package.mkdir(parents=True)
    for name, text in {"__init__.py": "", "settings.py": SETTINGS, "urls.py": URLS, "wsgi.py": WSGI,
                       "journey.yml": JOURNEY}.items():
        (package / name).write_text(text)


def check_airflow(port: int) -> None:
    """One session by hand first: a broken setup must fail loudly, not measure errors."""
    screens, session = [], uuid.uuid4().hex
    for text in ("*213#", "1", "0"):
        form = {"sessionId": session, "serviceCode": "*213#", "phoneNumber": "+8801812345678", "text": text}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ussd", urllib.parse.urlencode(form).encode(), 10) as r:
            screens.append(r.read().decode())
    if not (screens[0].startswith("CON Welcome to Alap") and "Enter a mobile number" in screens[1]
            and screens[2] == screens[0]):
        raise SystemExit(f"ussd_airflow answered {screens!r}")


def measure_airflow(venv: Path, project: Path, worker: str, args: argparse.Namespace) -> dict:
    kind, _, threads = worker.partition(":")
    port = free_port()
    argv = [str(venv / "bin" / "gunicorn"), "--chdir", str(project), "--workers", "1", "--worker-class", kind,
            "--bind", f"127.0.0.1:{port}", "airflow_bench.wsgi:application"]
    if threads:
        argv += ["--threads", threads]
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = start(pinned(0, argv), env, "ussd-airflow")
    try:
        wait_listening(port, proc)
        check_airflow(port)
        return load(port, 0, args, 1, proto="at", path="/ussd")
    finally:
        stop(proc)


def measure_alap(args: argparse.Namespace) -> dict:
    """`alap serve` as bench/hops.py runs it: core 0, BDApps protocol, Redis database 12."""
    alap_bin = shutil.which("alap", path=str(Path(sys.executable).parent)) or "alap"
    gateway_port, port = free_port(), free_port()
    proc = start(pinned(0, [alap_bin, "serve"]), alap_env(port, f"http://127.0.0.1:{gateway_port}/bd", args), "alap")
    try:
        wait_listening(port, proc, "/healthz")
        return load(port, gateway_port, args, 1)
    finally:
        stop(proc)


def figures(name: str, r: dict) -> str:
    return f"{name} {r['rate']:.0f} hops/s p50 {r['p50']:.1f} p99 {r['p99']:.1f} ms errors {r['errors']:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(parser)
    parser.add_argument("--airflow-workers", default="gthread:4",
                        help="gunicorn worker kinds for ussd_airflow, comma-separated: sync, gthread:N")
    args = parser.parse_args()
    args.workers, args.log_level = 1, "info"  # what hops.alap_env needs: one worker, production log level
    if not (SHARED / "loadgen.py").exists():
        raise SystemExit(f"the shared benchmark is not at {SHARED}")
    venv = ensure_venv()
    workers = args.airflow_workers.split(",")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    airflow: dict[str, list[dict]] = {w: [] for w in workers}
    alap: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="alap-bench-airflow-") as tmp:
        write_project(Path(tmp))
        for run in range(1, args.runs + 1):
            for worker in workers:
                airflow[worker].append(measure_airflow(venv, Path(tmp), worker, args))
            alap.append(measure_alap(args))
            line = " | ".join(figures(f"ussd_airflow ({w})", airflow[w][-1]) for w in workers)
            print(f"run {run}: {line} | {figures('alap', alap[-1])}", flush=True)

    def med(results: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in results)

    best = max(workers, key=lambda w: med(airflow[w], "rate"))
    print(f"\nmedians of {args.runs} runs, {args.users} users, server on core 0, generator on core 1:")
    for name, results in [*((f"ussd_airflow ({w})", airflow[w]) for w in workers), ("alap", alap)]:
        print(f"  {name:<24} {med(results, 'rate'):>6.0f} hops/s   p50 {med(results, 'p50'):.1f} ms   "
              f"p99 {med(results, 'p99'):.1f} ms")
    multiple = statistics.median(a["rate"] / b["rate"] for a, b in zip(alap, airflow[best]))
    print(f"  Alap / ussd_airflow ({best}): x{multiple:.1f} the hops/s (goal >= 10)")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
