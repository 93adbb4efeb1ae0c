"""The events feature's settings, read from the App's environment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..config import flag, text
from ..errors import ConfigError

#: the environment variables this feature reads
NAMES = ("AKENEO_EVENT_PLATFORM_URL", "AKENEO_EVENTS_CONTACT_EMAIL")
DEFAULT_PLATFORM_URL = "https://event.prd.sdk.akeneo.cloud/api/v1"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
LOCAL_PLATFORM_PATH = "/event-platform/api/v1"  # where the local PIM plays the platform
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,253}")


@dataclass(frozen=True)
class EventSettings:
    """Where the Event Platform's management API is (the App's public base is the core's)."""

    platform_url: str = DEFAULT_PLATFORM_URL

    #: the platform delivers over http too: a local one (the local PIM's), reached over http
    #: (on loopback, or with AKENEO_PIM_ALLOW_HTTP); Akeneo's own delivers to https only
    http_allowed: bool = False

    #: who the platform writes to about the subscription (suspended, revoked); None: the user
    #: who connected the App
    contact_email: str | None = None

    def platform_for(self, pim_url: str) -> str:
        """The platform of `pim_url`: a PIM on this machine is the local PIM, which plays its
        own, so that nothing local ever reaches Akeneo's production platform (whose answer to
        a local PIM's token could only be a refusal, after retries)."""
        if self.platform_url == DEFAULT_PLATFORM_URL and urlsplit(pim_url).hostname in LOOPBACK:
            return f"{pim_url.rstrip('/')}{LOCAL_PLATFORM_PATH}"
        return self.platform_url

    @classmethod
    def from_env(cls, env: Mapping[str, Any]) -> EventSettings:
        """From the App's raw settings; ConfigError with a sentence when one is wrong."""
        platform_url = (text(env, "AKENEO_EVENT_PLATFORM_URL") or DEFAULT_PLATFORM_URL).rstrip("/")
        parts = urlsplit(platform_url)
        local = parts.hostname in LOOPBACK or flag(env, "AKENEO_PIM_ALLOW_HTTP", False)
        if parts.scheme != "https" and not (local and parts.scheme == "http"):
            raise ConfigError(
                "AKENEO_EVENT_PLATFORM_URL must be an https:// URL (http:// only for a local "
                f"PIM), not {platform_url!r}."
            )
        http_allowed = parts.scheme == "http"
        contact_email = text(env, "AKENEO_EVENTS_CONTACT_EMAIL")
        if contact_email is not None and not EMAIL.fullmatch(contact_email):
            raise ConfigError(
                f"AKENEO_EVENTS_CONTACT_EMAIL must be an email address, not {contact_email!r}."
            )
        return cls(
            platform_url=platform_url, http_allowed=http_allowed, contact_email=contact_email
        )
