"""Every setting of the App: its environment variable, its default, its validation — in one place.

Settings are read once, in create_app(), from (lowest to highest) the `.env` file, the process
environment and the overrides that tests pass in. Nothing else in the App reads os.environ.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from .errors import ConfigError
from .keys import derive_fernet_key, fernet_keys, instance_secret_key
from .logs import checked_level
from .pim_url import ANY_PUBLIC_HOST, DEFAULT_ALLOWED_HOSTS, split_pattern

# the core's: the channels for the first page, and who connected; each feature adds its own
# (app/features.py: require_scopes) unless AKENEO_SCOPES names them all
DEFAULT_SCOPES = "read_channel_settings read_channel_localization openid profile email"

#: every environment variable the core reads (each feature's settings module lists its own)
NAMES = (
    "AKENEO_CLIENT_ID",
    "AKENEO_CLIENT_SECRET",
    "AKENEO_SCOPES",
    "SECRET_KEY",
    "DATABASE_URL",
    "TOKEN_ENCRYPTION_KEY",
    "AKENEO_PIM_ALLOWED_HOSTS",
    "AKENEO_PIM_ALLOW_HTTP",
    "AKENEO_HTTP_TIMEOUT",
    "AKENEO_MAX_RESPONSE_MB",
    "AKENEO_MAX_IN_FLIGHT",
    "TRUSTED_PROXIES",
    "LOG_LEVEL",
    "AKENEO_PIM_URL",
    "AKENEO_PUBLIC_URL",
    "AKENEO_ACCESS_TOKEN",
    "AKENEO_CONNECTION_CLIENT_ID",
    "AKENEO_CONNECTION_SECRET",
    "AKENEO_CONNECTION_USERNAME",
    "AKENEO_CONNECTION_PASSWORD",
    "SERVER_TIMING",
    "TESTING",
    "LOCAL_PIM_URL",
)

# Scopes an Akeneo PIM knows. The PIM silently drops unknown ones, so a typo here would only show
# up as a missing permission much later: refuse it at start instead.
KNOWN_SCOPES = frozenset(
    """
    read_products write_products delete_products read_catalog_structure write_catalog_structure
    read_attribute_options write_attribute_options read_categories write_categories
    read_channel_localization read_channel_settings write_channel_settings read_association_types
    write_association_types read_catalogs write_catalogs delete_catalogs read_asset_families
    write_asset_families read_assets write_assets delete_assets read_reference_entities
    write_reference_entities read_reference_entity_records write_reference_entity_records
    read_workflows read_workflow_step_assignees read_workflow_tasks write_workflow_tasks
    create_suggestions read_suggestions manage_suggestions manage_extensions openid profile email
    """.split()
)

#: in the instance folder: the settings of the local set-up `make run` last started (its local
#: PIM's client id and secret, its platform, its public URL), written by the launcher
LOCAL_SETUP_FILE = "local-setup.env"
MIN_SECRET_KEY = 32  # characters: a cookie-signing key shorter than that can be guessed offline
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class ConnectionCredentials:
    """What Connect > Connection settings gives: client id, secret, username, password."""

    client_id: str
    secret: str
    username: str
    password: str

    def __repr__(self) -> str:
        return f"ConnectionCredentials(client_id={self.client_id!r}, username={self.username!r})"


@dataclass(frozen=True)
class Settings:
    """The App's configuration, validated. See `.env.example` for each variable."""

    client_id: str | None
    client_secret: str | None
    scopes: tuple[str, ...]
    secret_key: str
    database_url: str
    encryption_keys: tuple[str, ...]
    pim_allowed_hosts: tuple[str, ...]
    pim_allow_http: bool
    http_timeout: float
    max_response_mb: int
    trusted_proxies: int
    log_level: str
    pim_url: str | None = None
    #: calls in flight to one PIM at once, across all the App's processes (Akeneo allows 4)
    max_in_flight: int = 4
    #: the App's public base (where a PIM and Akeneo's services reach it); None: nothing is
    #: registered that needs one (never the address a request came in on: its Host is forged)
    public_url: str | None = None
    #: set by `make run`: the local PIM this App is registered in (the welcome page points there)
    local_pim_url: str | None = None
    connection: ConnectionCredentials | None = None
    access_token: str | None = None
    server_timing: bool = False
    testing: bool = False
    token_key_given: bool = False
    #: True when AKENEO_SCOPES was set: then features add no scope of their own
    scopes_given: bool = False
    #: every raw value (.env, environment, overrides): features read their own settings here
    env: Mapping[str, Any] = field(default_factory=dict)
    #: what the App should say once logging is set up (a generated key, a wide host policy)
    warnings: tuple[str, ...] = ()

    def __repr__(self) -> str:  # settings hold secrets: never print them
        return f"Settings(client_id={self.client_id!r}, scopes={self.scopes!r})"

    @property
    def is_configured(self) -> bool:
        """True when the App has the credentials it needs to connect to a PIM."""
        return bool(self.client_id and self.client_secret)

    def with_scopes(self, scopes: tuple[str, ...]) -> Settings:
        """These settings asking for `scopes` too, unless AKENEO_SCOPES chose every scope."""
        if self.scopes_given:
            return self
        return replace(self, scopes=tuple(dict.fromkeys((*self.scopes, *scopes))))

    @classmethod
    def load(cls, instance_path: str, overrides: Mapping[str, Any] | None = None) -> Settings:
        """Read the settings from `.env`, the environment and `overrides`, in that order."""
        overrides = dict(overrides or {})
        testing = flag(overrides, "TESTING", False)
        # tests must not depend on the developer's .env
        values: dict[str, Any] = {} if testing else dict(dotenv_values(".env"))
        values.update(os.environ)
        values.update(overrides)
        local_setup = Path(instance_path) / LOCAL_SETUP_FILE
        if not testing and not text(values, "AKENEO_CLIENT_ID") and local_setup.exists():
            # nothing configured: the set-up `make run` runs, whole (so `flask akeneo …` in a
            # new shell calls the local PIM and its platform, never Akeneo's own hosts)
            values = {**dotenv_values(local_setup), **values}
        return cls.from_mapping(values, instance_path=instance_path)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, instance_path: str) -> Settings:
        """Validate raw string values into Settings; raise ConfigError with a sentence on error."""
        instance = Path(instance_path)
        warnings: list[str] = []
        secret_key = text(values, "SECRET_KEY")
        if secret_key is None:
            secret_key, generated = instance_secret_key(instance)
            if generated:
                warnings.append(
                    f"SECRET_KEY is not set: generated one in {instance / 'secret_key'}. Set "
                    "SECRET_KEY in production, the same value on every instance."
                )
        elif len(secret_key) < MIN_SECRET_KEY:
            raise ConfigError(
                f"SECRET_KEY is {len(secret_key)} characters long; it needs at least "
                f"{MIN_SECRET_KEY}. Make one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'"
            )
        keys = text(values, "TOKEN_ENCRYPTION_KEY")
        allowed_hosts = _host_patterns(text(values, "AKENEO_PIM_ALLOWED_HOSTS"))
        if ANY_PUBLIC_HOST in allowed_hosts:
            warnings.append(
                "AKENEO_PIM_ALLOWED_HOSTS has '*': the App accepts any PIM with public addresses. "
                "A hostile PIM can then mix up a user's connection with an honest PIM's (Akeneo "
                "sends no issuer in the callback): list your PIMs instead (see SECURITY.md)."
            )
        return cls(
            client_id=text(values, "AKENEO_CLIENT_ID"),
            client_secret=text(values, "AKENEO_CLIENT_SECRET"),
            scopes=_scopes(text(values, "AKENEO_SCOPES") or DEFAULT_SCOPES),
            scopes_given=text(values, "AKENEO_SCOPES") is not None,
            secret_key=secret_key,
            database_url=_database_url(text(values, "DATABASE_URL"), instance),
            # the key derived from SECRET_KEY stays last (decrypt only): moving to an explicit
            # TOKEN_ENCRYPTION_KEY loses nothing, and `rotate-key` then re-encrypts
            encryption_keys=(*fernet_keys(keys or ""), derive_fernet_key(secret_key)),
            token_key_given=keys is not None,
            pim_allowed_hosts=allowed_hosts,
            pim_allow_http=flag(values, "AKENEO_PIM_ALLOW_HTTP", False),
            http_timeout=_positive_float(values, "AKENEO_HTTP_TIMEOUT", 10.0),
            max_response_mb=_megabytes(values, "AKENEO_MAX_RESPONSE_MB", 64),
            max_in_flight=_whole_number(
                values, "AKENEO_MAX_IN_FLIGHT", 4, 1, 10, "the calls in flight to a PIM at once"
            ),
            trusted_proxies=_whole_number(
                values, "TRUSTED_PROXIES", 0, 0, 10, "the number of proxies in front of the App"
            ),
            log_level=checked_level(text(values, "LOG_LEVEL")),
            pim_url=(text(values, "AKENEO_PIM_URL") or "").rstrip("/") or None,
            public_url=_public_url(values),
            local_pim_url=text(values, "LOCAL_PIM_URL"),
            connection=_connection(values),
            access_token=text(values, "AKENEO_ACCESS_TOKEN"),
            server_timing=flag(values, "SERVER_TIMING", False),
            testing=flag(values, "TESTING", False),
            warnings=tuple(warnings),
            env=dict(values),
        )


def text(values: Mapping[str, Any], name: str) -> str | None:
    """The setting `name`, stripped; None when unset or blank."""
    value = values.get(name)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def flag(values: Mapping[str, Any], name: str, default: bool) -> bool:
    """The setting `name` as 1/0 (true/false, yes/no, on/off); ConfigError otherwise."""
    raw = values.get(name)
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name} must be 1 or 0, not {raw!r}.")


def _public_url(values: Mapping[str, Any]) -> str | None:
    raw = text(values, "AKENEO_PUBLIC_URL")
    if raw is None:
        return None
    if not raw.startswith("https://") and not (
        raw.startswith("http://") and flag(values, "AKENEO_PIM_ALLOW_HTTP", False)
    ):
        raise ConfigError(
            f"AKENEO_PUBLIC_URL must be the App's https:// address, not {raw!r} (http:// only "
            "with AKENEO_PIM_ALLOW_HTTP, for local PIMs)."
        )
    return raw.rstrip("/")


def _positive_float(values: Mapping[str, Any], name: str, default: float) -> float:
    raw = text(values, name)
    if raw is None:
        return default
    try:
        number = float(raw)
    except ValueError:
        number = -1.0
    if not 0 < number <= 300:
        raise ConfigError(f"{name} must be a number of seconds between 0 and 300, not {raw!r}.")
    return number


def _database_url(raw: str | None, instance: Path) -> str:
    """DATABASE_URL; the `postgres://` and `postgresql://` that hosts hand out mean psycopg 3."""
    if raw is None:
        return f"sqlite:///{instance / 'akeneo-app.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw.removeprefix(prefix)
    return raw


def _megabytes(values: Mapping[str, Any], name: str, default: int) -> int:
    raw = text(values, name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 1024:
        raise ConfigError(f"{name} must be a number of megabytes from 1 to 1024, not {raw!r}.")
    return int(raw)


def seconds(values: Mapping[str, Any], name: str, default: int) -> int:
    """The setting `name`: 0 (never) or 10 s to a week; ConfigError otherwise."""
    raw = text(values, name)
    if raw is None:
        return default
    if not raw.isdigit() or not (int(raw) == 0 or 10 <= int(raw) <= 7 * 86400):
        raise ConfigError(
            f"{name} must be a number of seconds from 10 to 604800 (a week), or 0 for never; "
            f"not {raw!r}."
        )
    return int(raw)


def _whole_number(
    values: Mapping[str, Any], name: str, default: int, low: int, high: int, meaning: str
) -> int:
    raw = text(values, name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigError(f"{name} must be {meaning} ({low} to {high}).")
    return int(raw)


CONNECTION_VARIABLES = (
    "AKENEO_CONNECTION_CLIENT_ID",
    "AKENEO_CONNECTION_SECRET",
    "AKENEO_CONNECTION_USERNAME",
    "AKENEO_CONNECTION_PASSWORD",
)


def _connection(values: Mapping[str, Any]) -> ConnectionCredentials | None:
    given = {name: text(values, name) for name in CONNECTION_VARIABLES}
    if not any(given.values()):
        return None
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise ConfigError(
            f"A connection needs all four of its settings; {', '.join(missing)} missing. Copy "
            "them from the PIM (Connect > Connection settings)."
        )
    client_id, secret, username, password = (str(given[n]) for n in CONNECTION_VARIABLES)
    return ConnectionCredentials(client_id, secret, username, password)


def _host_patterns(raw: str | None) -> tuple[str, ...]:
    """AKENEO_PIM_ALLOWED_HOSTS as lowercase patterns; unset: Akeneo's cloud only."""
    patterns = tuple(p.strip().lower() for p in (raw or "").split(",") if p.strip())
    for pattern in patterns:
        try:
            host, port = split_pattern(pattern)
        except ValueError:
            host, port = "", None
        if not host or (port is not None and not 0 < port < 65536) or "/" in pattern:
            raise ConfigError(
                f"AKENEO_PIM_ALLOWED_HOSTS has {pattern!r}, which is not a host pattern. Use "
                "host names, *.domain, host:port or * (any public host), comma-separated."
            )
    return patterns or DEFAULT_ALLOWED_HOSTS


def _scopes(raw: str) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(raw.split()))  # keeps order, drops repeats
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if unknown:
        raise ConfigError(
            f"AKENEO_SCOPES has scopes the PIM does not know: {' '.join(unknown)}. "
            "The PIM would drop them silently; see the list in the README (Configuration > Scopes)."
        )
    return scopes
