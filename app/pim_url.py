"""Is this PIM URL one the App may redirect a browser to and call from the server?

`pim_url` arrives as a query parameter that anybody can forge. Accepting it blindly turns the App
into an open redirect (/activate) and an SSRF proxy (/callback posts to it). So a PIM URL is
reduced to its origin and accepted only when its host is on the allowlist or, with no allowlist,
when every address it resolves to is public.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import BadRequest

Resolver = Callable[[str], Sequence[str]]

MAX_LENGTH = 2048
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class PimUrlRefused(BadRequest):
    """The PIM URL is not acceptable; the message names the reason."""

    title = "This PIM address cannot be used"


@dataclass(frozen=True)
class PimUrlPolicy:
    """Which PIM URLs are acceptable: the allowlist and whether plain http is allowed."""

    allowed_hosts: tuple[str, ...] = ()
    allow_http: bool = False

    def check(self, raw: str | None, resolve: Resolver | None = None) -> str:
        """Return the PIM's origin (`https://host[:port]`), or raise PimUrlRefused saying why."""
        return check_pim_url(raw, self, resolve or resolve_addresses)


def resolve_addresses(host: str) -> list[str]:
    """Every address the host name resolves to (IPv4 and IPv6)."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)]


def check_pim_url(raw: str | None, policy: PimUrlPolicy, resolve: Resolver) -> str:
    """Normalise `raw` to its origin and check it against `policy` (see PimUrlPolicy.check)."""
    if not raw or not raw.strip():
        raise PimUrlRefused("The pim_url parameter is missing. Open the App from your PIM.")
    raw = raw.strip()
    if len(raw) > MAX_LENGTH or any(c.isspace() or ord(c) < 32 for c in raw) or "\\" in raw:
        raise PimUrlRefused("The PIM URL is malformed.")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise PimUrlRefused("The PIM URL is malformed.") from None

    allowed_schemes = ("https", "http") if policy.allow_http else ("https",)
    if parts.scheme.lower() not in allowed_schemes:
        reason = "Only https PIM URLs are accepted"
        if parts.scheme.lower() == "http":
            reason += " (set AKENEO_PIM_ALLOW_HTTP=1 for a local PIM)"
        raise PimUrlRefused(f"{reason}.")
    if "@" in parts.netloc:
        raise PimUrlRefused("The PIM URL must not contain a user name or password.")

    host = _valid_host(parts.hostname or "")
    scheme = parts.scheme.lower()
    default_port = 443 if scheme == "https" else 80
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != default_port:
        netloc += f":{port}"
    origin = f"{scheme}://{netloc}"

    if policy.allowed_hosts:
        if not any(_host_matches(host, pattern) for pattern in policy.allowed_hosts):
            raise PimUrlRefused(f"The PIM host {host} is not in AKENEO_PIM_ALLOWED_HOSTS.")
        return origin

    try:
        addresses = resolve(host)
    except (OSError, UnicodeError):
        raise PimUrlRefused(f"The PIM host {host} does not resolve.") from None
    if not addresses:
        raise PimUrlRefused(f"The PIM host {host} does not resolve.")
    for address in addresses:
        if not _is_public(address):
            raise PimUrlRefused(
                f"The PIM host {host} points to a private or local address. "
                "List it in AKENEO_PIM_ALLOWED_HOSTS if this PIM is yours."
            )
    return origin


def _valid_host(host: str) -> str:
    """A lowercase DNS name, dotted-quad IPv4 or IPv6 literal: nothing a resolver reinterprets."""
    host = host.lower().rstrip(".")
    if not host:
        raise PimUrlRefused("The PIM URL has no host.")
    try:
        return ipaddress.ip_address(host).compressed  # canonical dotted quad or IPv6
    except ValueError:
        pass
    labels = host.split(".")
    # all-numeric or hex last labels are IPv4 in disguise to getaddrinfo: 2130706433, 0x7f.1, 127.1
    if not all(_LABEL.match(label) for label in labels) or re.fullmatch(
        r"(0x[0-9a-f]*|[0-9]+)", labels[-1]
    ):
        raise PimUrlRefused("The PIM URL's host is not a valid host name.")
    return host


def _host_matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
