"""The upstream clients of one process (eCourier, eCare, CAAS), made from settings.

Made when the app is built (inside each worker, after any fork) and closed at shutdown.
Creating them opens no connection, so an unconfigured upstream costs nothing until a flow
calls it.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import Settings
from .integrations.caas import CaasClient
from .integrations.ecare import ECareClient
from .integrations.ecourier import ECourierClient


@dataclass
class Upstreams:
    ecourier: ECourierClient
    ecare: ECareClient
    caas: CaasClient

    @classmethod
    def from_settings(cls, settings: Settings) -> "Upstreams":
        return cls(
            ecourier=ECourierClient(settings.ecourier_base_url, settings.ecourier_api_key,
                                    settings.ecourier_api_secret, settings.ecourier_user_id),
            ecare=ECareClient(settings.ecare_url, settings.ecare_access_id, settings.ecare_access_pass),
            caas=CaasClient(settings.bdapps_base_url, settings.bdapps_app_id,
                            settings.bdapps_password),
        )

    async def aclose(self) -> None:
        for client in (self.ecourier, self.ecare, self.caas):
            await client.aclose()
