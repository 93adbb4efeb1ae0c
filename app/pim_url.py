"""Is this PIM URL one the App may redirect a browser to and call from the server?

`pim_url` arrives as a query parameter that anybody can forge. Accepting it blindly turns the App
into an open redirect (/activate) and an SSRF proxy (/callback posts to it). So a PIM URL is
reduced to its origin and accepted only when its host matches AKENEO_PIM_ALLOWED_HOSTS: by default
Akeneo's cloud (`*.cloud.akeneo.com`), or hosts you list; `*` accepts any host whose addresses are
all public.

Why not "any public host" by default: Akeneo's callback does not say which PIM issued the code (no
`iss`), so an App that talks to any PIM can be made to send an honest PIM's code to a hostile one
(a mix-up), and every PIM it talks to sees a `code_identifier`/`code_challenge` pair that redeems
other codes of this App. Only the App's choice of PIMs protects it. See SECURITY.md.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from .errors import BadRequest

Resolver = Callable[[str], Sequence[str]]

MAX_LENGTH = 2048
ANY_PUBLIC_HOST = "*"
DEFAULT_ALLOWED_HOSTS = ("*.cloud.akeneo.com",)
DNS_TIMEOUT = 5.0  # seconds: getaddrinfo has no time-out of its own
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, IPv4-compatible,
# IPv4-translated): judged by that IPv4, or a NAT64 gateway would reach 127.0.0.1 for us
_IPV4_IN_LAST_32_BITS = tuple(
    ipaddress.IPv6Network(n) for n in ("64:ff9b::/96", "::/96", "::ffff:0:0:0/96")
)
# prefixes whose IPv4 cannot be read at a fixed place (local-use NAT64, Teredo): refused
_IPV6_REFUSED = tuple(ipaddress.IPv6Network(n) for n in ("64:ff9b:1::/48", "2001::/32"))


class PimUrlRefused(BadRequest):
    """The PIM URL is not acceptable; the message names the reason."""

    title = "This PIM address cannot be used"


@dataclass(frozen=True)
class PimOrigin:
    """A PIM URL reduced to its parts: `https://host[:port]`, the host and the port."""

    origin: str
    host: str
    port: int


@dataclass(frozen=True)
class PimUrlPolicy:
    """Which PIM URLs are acceptable: host patterns (`*` = any public host), plain http or not."""

    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS
    allow_http: bool = False

    @property
    def any_public_host(self) -> bool:
        """True when `*` is listed: any host whose addresses are all public is accepted."""
        return ANY_PUBLIC_HOST in self.allowed_hosts

    def check(self, raw: str | None, resolve: Resolver | None = None) -> str:
        """Return the PIM's origin (`https://host[:port]`), or raise PimUrlRefused saying why."""
        return check_pim_url(raw, self, resolve or resolve_addresses)


def resolve_addresses(host: str, timeout: float = DNS_TIMEOUT) -> list[str]:
    """Every address the host name resolves to (IPv4 and IPv6), within `timeout` seconds."""
    found: list[str] = []
    failure: list[BaseException] = []

    def look_up() -> None:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
            found.extend(str(info[4][0]) for info in infos)
        except (OSError, UnicodeError) as error:
            failure.append(error)

    # a daemon thread: a resolver that hangs costs one idle thread, never a worker
    thread = threading.Thread(target=look_up, daemon=True, name="pim-dns")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"resolving {host} took more than {timeout:g} s")
    if failure:
        raise failure[0]
    return found


@lru_cache(maxsize=1024)  # pure: the same PIM opens the App again and again
def normalise(raw: str | None, *, allow_http: bool) -> PimOrigin:
    """Reduce a PIM URL to its origin, refusing what is malformed; no host policy applied."""
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

    scheme = parts.scheme.lower()
    if scheme not in (("https", "http") if allow_http else ("https",)):
        if scheme == "http":
            raise PimUrlRefused(
                "Only https PIM URLs are accepted (set AKENEO_PIM_ALLOW_HTTP=1 for a local PIM)."
            )
        if not parts.netloc:
            raise PimUrlRefused(
                "The PIM URL must be a full address such as https://my-pim.cloud.akeneo.com."
            )
        accepted = "http or https" if allow_http else "https"
        raise PimUrlRefused(f"Only {accepted} PIM URLs are accepted, not {scheme or 'this'}.")
    if "@" in parts.netloc:
        raise PimUrlRefused("The PIM URL must not contain a user name or password.")

    host = _valid_host(parts.hostname or "")
    default_port = 443 if scheme == "https" else 80
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != default_port:
        netloc += f":{port}"
    return PimOrigin(f"{scheme}://{netloc}", host, port or default_port)


def check_pim_url(raw: str | None, policy: PimUrlPolicy, resolve: Resolver) -> str:
    """Normalise `raw` to its origin and check it against `policy` (see PimUrlPolicy.check)."""
    pim = normalise(raw, allow_http=policy.allow_http)
    patterns = [p for p in policy.allowed_hosts if p != ANY_PUBLIC_HOST]
    if any(_host_matches(pim.host, pim.port, pattern) for pattern in patterns):
        return pim.origin
    if not policy.any_public_host:
        listed = ",".join(policy.allowed_hosts)
        raise PimUrlRefused(
            f"The PIM host {pim.host} is not in AKENEO_PIM_ALLOWED_HOSTS ({listed}). If this PIM "
            f"is yours, add it: AKENEO_PIM_ALLOWED_HOSTS={listed},{pim.host}"
        )

    try:
        addresses = resolve(pim.host)
    except TimeoutError:
        raise PimUrlRefused(f"The PIM host {pim.host} did not resolve in time.") from None
    except (OSError, UnicodeError):
        raise PimUrlRefused(f"The PIM host {pim.host} does not resolve.") from None
    if not addresses:
        raise PimUrlRefused(f"The PIM host {pim.host} does not resolve.")
    for address in addresses:
        if not _is_public(address):
            raise PimUrlRefused(
                f"The PIM host {pim.host} points to a private or local address. "
                "List it in AKENEO_PIM_ALLOWED_HOSTS if this PIM is yours."
            )
    return pim.origin


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


def split_pattern(pattern: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 → (host, port or None)."""
    if pattern.startswith("["):
        host, _, rest = pattern[1:].partition("]")
        port = rest.removeprefix(":")
        return host, int(port) if port else None
    if pattern.count(":") == 1:
        host, port = pattern.split(":")
        return host, int(port)
    return pattern, None


def _host_matches(host: str, port: int, pattern: str) -> bool:
    pattern_host, pattern_port = split_pattern(pattern)
    if pattern_port is not None and pattern_port != port:
        return False
    if pattern_host.startswith("*."):
        return host.endswith(pattern_host[1:]) and len(host) > len(pattern_host) - 1
    return host == pattern_host


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local or any(ip in net for net in _IPV6_REFUSED):
            return False
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and any(ip in net for net in _IPV4_IN_LAST_32_BITS):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast
