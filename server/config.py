"""Settings from the environment, named as README.md ("Configuration") lists them.

`load_settings()` turns any bad value into one `ConfigError` line naming the variable; the
command line prints that line and exits, never a traceback and never a half-started server.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Literal
from urllib.parse import unquote

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def project_root() -> Path:
    """The flow project the command runs in: the current folder when it has a `flows/` folder
    (a project made by `alap new`, or this repository), else this repository (the demo)."""
    here = Path.cwd()
    return here if (here / "flows").is_dir() else REPO_ROOT

ECARE_DEFAULT_URL = "http://118.179.129.98/myportal/api/rechargeapi/recharge_api_thirdparty.php"


# The SMS routes ALAP_SMS_ROUTES may list. Parsed here, not in messaging/policy.py (which uses
# this parser): settings load before any layer is imported, and importing the messaging package
# would load prometheus-client before `alap serve` sets up its multiprocess directory.
KNOWN_ROUTES = ("bdapps", "aamarsms", "dinisoft")


def parse_routes(value: str | Iterable[str]) -> tuple[str, ...]:
    """"bdapps,aamarsms,dinisoft" -> ("bdapps", "aamarsms", "dinisoft"). Raises ValueError
    naming an unknown or repeated route."""
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [i.strip().lower() for i in items if i.strip()]
    if not names:
        raise ValueError("at least one route is needed")
    for name in names:
        if name not in KNOWN_ROUTES:
            raise ValueError(f"unknown SMS route {name!r} (known: {', '.join(KNOWN_ROUTES)})")
    if len(set(names)) != len(names):
        raise ValueError("a route is listed twice")
    return tuple(names)


DEFAULT_MAX_HOPS_IN_FLIGHT = 48  # per worker: ALAP_MAX_HOPS_IN_FLIGHT (server/bdapps/admission.py)


class ConfigError(Exception):
    """One line naming the variable that is missing or malformed."""


def _url_credentials(url: str) -> tuple[str, str, str] | None:
    """(before, userinfo, after) of a URL with credentials (`redis://user:pw@host/0`), else None."""
    scheme, sep, rest = url.partition("//")
    if not sep:
        scheme, rest = "", url
    netloc, slash, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if not at:
        return None
    return scheme + sep, userinfo, "@" + host + slash + path


def url_password(url: str | None) -> str | None:
    """The password in a URL's userinfo (`redis://:pw@host`, `redis://user:pw@host`); a userinfo
    without ':' is taken as a password too (a token)."""
    parts = _url_credentials(url or "")
    if parts is None:
        return None
    user, colon, password = parts[1].partition(":")
    return (password if colon else user) or None


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, for error lines and logs."""
    parts = _url_credentials(url)
    if parts is None:
        return url
    user, colon, _ = parts[1].partition(":")
    return parts[0] + (f"{user}:***" if colon else "***") + parts[2]


class Settings(BaseSettings):
    # `.env` in the current folder (a project's, see `alap new`) fills what the environment lacks.
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, case_sensitive=True,
                                      env_file=".env", env_file_encoding="utf-8")

    port: int = Field(8080, ge=1, le=65535, validation_alias="PORT")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")

    bdapps_app_id: str = Field("", validation_alias="BDAPPS_APP_ID")
    bdapps_password: str = Field("", validation_alias="BDAPPS_PASSWORD", repr=False)
    bdapps_base_url: str = Field("https://developer.bdapps.com", validation_alias="BDAPPS_BASE_URL")
    bdapps_timeout: float = Field(3.0, gt=0, le=30, validation_alias="BDAPPS_TIMEOUT")  # integrations/bdapps.py

    ecourier_base_url: str = Field("https://staging.ecourier.com.bd/api", validation_alias="ECOURIER_BASE_URL")
    ecourier_api_key: str = Field("", validation_alias="ECOURIER_API_KEY", repr=False)
    ecourier_api_secret: str = Field("", validation_alias="ECOURIER_API_SECRET", repr=False)
    ecourier_user_id: str = Field("", validation_alias="ECOURIER_USER_ID")

    ecare_url: str = Field(ECARE_DEFAULT_URL, validation_alias="ECARE_URL")
    ecare_access_id: str = Field("", validation_alias="ECARE_ACCESS_ID")
    ecare_access_pass: str = Field("", validation_alias="ECARE_ACCESS_PASS", repr=False)

    aamarsms_base_url: str = Field("https://aamarsms.com", validation_alias="AAMARSMS_BASE_URL")
    aamarsms_user: str = Field("", validation_alias="AAMARSMS_USER")
    aamarsms_password: str = Field("", validation_alias="AAMARSMS_PASSWORD", repr=False)
    aamarsms_from: str = Field("", validation_alias="AAMARSMS_FROM")

    dinisoft_base_url: str = Field("https://sms.dinisoftbd.com:7790", validation_alias="DINISOFT_BASE_URL")
    dinisoft_api_key: str = Field("", validation_alias="DINISOFT_API_KEY", repr=False)
    dinisoft_secret_key: str = Field("", validation_alias="DINISOFT_SECRET_KEY", repr=False)
    dinisoft_caller_id: str = Field("", validation_alias="DINISOFT_CALLER_ID")

    flows_dir: Path = Field(default_factory=lambda: project_root() / "flows", validation_alias="ALAP_FLOWS_DIR")
    templates_dir: Path = Field(default_factory=lambda: project_root() / "templates",
                                validation_alias="ALAP_TEMPLATES_DIR")
    locales_dir: Path = Field(default_factory=lambda: project_root() / "locales", validation_alias="ALAP_LOCALES_DIR")

    admin_token: str | None = Field(None, validation_alias="ALAP_ADMIN_TOKEN", repr=False)
    session_ttl: int = Field(180, ge=10, le=86400, validation_alias="ALAP_SESSION_TTL")
    resume_window: int = Field(120, ge=0, le=86400, validation_alias="ALAP_RESUME_WINDOW")
    sms_session_ttl: int = Field(900, ge=30, le=7 * 86400, validation_alias="ALAP_SMS_SESSION_TTL")
    sms_routes: str = Field("bdapps,aamarsms,dinisoft", validation_alias="ALAP_SMS_ROUTES")
    sms_rate: float = Field(10.0, ge=0, le=1000, validation_alias="ALAP_SMS_RATE")
    # Defaults as server/broadcast/store.py's LEASE_SECONDS and runner.py's RATE_LIMIT_HOLD.
    broadcast_lease: float = Field(10.0, ge=1, le=600, validation_alias="ALAP_BROADCAST_LEASE")
    broadcast_e1318_hold: float = Field(1.0, gt=0, le=30, validation_alias="ALAP_BROADCAST_E1318_HOLD")
    bdapps_sms_source_address: str | None = Field(None, validation_alias="BDAPPS_SMS_SOURCE_ADDRESS")
    default_language: Literal["bn", "en"] = Field("bn", validation_alias="ALAP_DEFAULT_LANGUAGE")
    ussd_unicode: bool = Field(True, validation_alias="ALAP_USSD_UNICODE")
    # Who may call /bdapps/* (server/bdapps/callers.py): comma-separated CIDRs, unset = anyone.
    bdapps_allowed_ips: str | None = Field(None, validation_alias="BDAPPS_ALLOWED_IPS")
    trusted_proxies: str | None = Field(None, validation_alias="ALAP_TRUSTED_PROXIES")

    # Tuning knobs with safe defaults.
    budget_ascii: int = Field(160, ge=40, le=182, validation_alias="ALAP_BUDGET_440")
    budget_unicode: int = Field(80, ge=20, le=91, validation_alias="ALAP_BUDGET_16")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", validation_alias="ALAP_LOG_LEVEL")
    # Hops one worker serves at once; beyond it a callback gets 503 E1603 (server/bdapps/admission.py).
    max_hops_in_flight: int = Field(DEFAULT_MAX_HOPS_IN_FLIGHT, ge=1, le=10000, validation_alias="ALAP_MAX_HOPS_IN_FLIGHT")

    # Mobile recharge (docs/recharge.md): the amounts a flow accepts, the CAAS payment
    # instrument, and the `alap worker` knobs (seconds unless said otherwise).
    redis_prefix: str = Field("alap:", min_length=1, validation_alias="ALAP_REDIS_PREFIX")
    recharge_min: int = Field(10, ge=1, le=100000, validation_alias="ALAP_RECHARGE_MIN")
    recharge_max: int = Field(1000, ge=1, le=100000, validation_alias="ALAP_RECHARGE_MAX")
    payment_instrument: str = Field("Mobile Account", min_length=1, validation_alias="ALAP_PAYMENT_INSTRUMENT")
    recharge_http_timeout: float = Field(10.0, gt=0, le=120, validation_alias="ALAP_RECHARGE_HTTP_TIMEOUT")
    recharge_retry_delay: float = Field(5.0, gt=0, le=3600, validation_alias="ALAP_RECHARGE_RETRY_DELAY")
    recharge_retry_max_delay: float = Field(300.0, gt=0, le=86400, validation_alias="ALAP_RECHARGE_RETRY_MAX_DELAY")
    recharge_poll_delay: float = Field(5.0, gt=0, le=3600, validation_alias="ALAP_RECHARGE_POLL_DELAY")
    recharge_poll_max_delay: float = Field(120.0, gt=0, le=86400, validation_alias="ALAP_RECHARGE_POLL_MAX_DELAY")
    recharge_poll_timeout: float = Field(3600.0, gt=0, le=30 * 86400, validation_alias="ALAP_RECHARGE_POLL_TIMEOUT")
    recharge_give_up_after: float = Field(1800.0, gt=0, le=30 * 86400, validation_alias="ALAP_RECHARGE_GIVE_UP")
    recharge_max_unknown: int = Field(5, ge=1, le=100, validation_alias="ALAP_RECHARGE_MAX_UNKNOWN")
    worker_id: str | None = Field(None, validation_alias="ALAP_WORKER_ID")
    worker_concurrency: int = Field(8, ge=1, le=256, validation_alias="ALAP_WORKER_CONCURRENCY")
    worker_poll_interval: float = Field(1.0, gt=0, le=60, validation_alias="ALAP_WORKER_POLL_INTERVAL")
    worker_lease: float = Field(60.0, gt=0, le=3600, validation_alias="ALAP_WORKER_LEASE")

    @field_validator("recharge_max")
    @classmethod
    def _max_above_min(cls, value: int, info) -> int:
        if value < info.data.get("recharge_min", 1):
            raise ValueError("must be at least ALAP_RECHARGE_MIN")
        return value

    @field_validator("worker_id")
    @classmethod
    def _worker_id(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if "|" in value or len(value) > 100:
            raise ValueError("must be at most 100 characters, without '|'")
        return value

    @field_validator("bdapps_base_url", "ecourier_base_url", "aamarsms_base_url", "dinisoft_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("sms_routes")
    @classmethod
    def _known_routes(cls, value: str) -> str:
        return ",".join(parse_routes(value))

    @field_validator("bdapps_allowed_ips", "trusted_proxies")
    @classmethod
    def _cidrs(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from .bdapps.callers import parse_networks  # here: it imports aiohttp.web, which most commands never need

        return ",".join(str(n) for n in parse_networks(value))  # ValueError names the bad entry

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://", "redis+cluster://")):
            raise ValueError("must start with redis://, rediss://, unix:// or redis+cluster://")
        from redis.connection import parse_url

        try:  # what the client will do at start-up (a bad port or option), said here in one line
            parse_url(value.replace("redis+cluster://", "redis://", 1))
        except ValueError as exc:
            raise ValueError(mask_url(str(exc))) from None
        return value

    def secrets(self) -> list[str | None]:
        """Values that must never reach a log line."""
        redis_password = url_password(self.redis_url)
        return [self.bdapps_password, self.ecourier_api_key, self.ecourier_api_secret, self.ecare_access_pass,
                self.aamarsms_password, self.dinisoft_api_key, self.dinisoft_secret_key, self.admin_token,
                redis_password, unquote(redis_password) if redis_password else None]

    def require_production(self) -> None:
        """What `alap serve` cannot run without."""
        for name, value in (("BDAPPS_APP_ID", self.bdapps_app_id), ("BDAPPS_PASSWORD", self.bdapps_password)):
            if not value:
                raise ConfigError(f"{name} is required by `alap serve` (the BDApps application credentials)")


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        by_alias = {info.validation_alias: name for name, info in Settings.model_fields.items()}
        field = by_alias.get(field, field)  # errors name the variable or the field, depending on the source
        alias = Settings.model_fields[field].validation_alias if field in Settings.model_fields else field
        secret = field in Settings.model_fields and not Settings.model_fields[field].repr
        given = err.get("input")
        if field == "redis_url" and isinstance(given, str):
            given = mask_url(given)  # a REDIS_URL may carry the Redis password
        shown = "" if secret else f" (got {given!r})"
        raise ConfigError(f"{alias}: {err['msg']}{shown}"[:300]) from None
