"""`alap dev`: the server and the sandbox fakes in one process, wired together.

This is the only production-side module that imports `server/sandbox/`, and only `alap dev`
imports it.
"""
from __future__ import annotations

from aiohttp import web

from .app import create_app
from .config import Settings
from .sandbox.bdapps import create_bdapps_fake
from .sandbox.caas import create_caas_fake
from .sandbox.ecare import ECARE_PATH, create_ecare_fake
from .sandbox.ecourier import create_ecourier_fake
from .sandbox.simulator import add_simulator
from .upstreams import Upstreams

SANDBOX_APP_ID = "APP_000001"
SANDBOX_PASSWORD = "sandbox"


def dev_settings(settings: Settings) -> Settings:
    """Fill what a newcomer has not configured with sandbox values pointing at this process."""
    base = f"http://127.0.0.1:{settings.port}/sandbox"
    return settings.model_copy(update={
        "bdapps_base_url": f"{base}/bdapps",
        "bdapps_app_id": SANDBOX_APP_ID, "bdapps_password": SANDBOX_PASSWORD,
        "ecourier_base_url": f"{base}/ecourier",
        "ecourier_api_key": "sandbox-key", "ecourier_api_secret": "sandbox-secret",
        "ecourier_user_id": "sandbox-user",
        "ecare_url": f"{base}/ecare{ECARE_PATH}", "ecare_access_id": "sandbox", "ecare_access_pass": "sandbox-pass",
    })


def create_dev_app(settings: Settings) -> web.Application:
    settings = dev_settings(settings)
    base = f"http://127.0.0.1:{settings.port}/sandbox"
    # The CAAS fake has its own mount point; in production CAAS shares BDAPPS_BASE_URL.
    upstreams = Upstreams.from_settings(settings, caas_base_url=f"{base}/caas")
    app = create_app(settings, upstreams=upstreams)
    callback = f"http://127.0.0.1:{settings.port}/bdapps/ussd"
    app.add_subapp("/sandbox/bdapps/", create_bdapps_fake(callback, settings.bdapps_app_id, settings.bdapps_password))
    app.add_subapp("/sandbox/ecourier/", create_ecourier_fake("sandbox-key", "sandbox-secret", "sandbox-user"))
    app.add_subapp("/sandbox/ecare/", create_ecare_fake("sandbox", "sandbox-pass"))
    app.add_subapp("/sandbox/caas/", create_caas_fake(SANDBOX_APP_ID, SANDBOX_PASSWORD))
    add_simulator(app, (settings.budget_ascii, settings.budget_unicode))
    return app
