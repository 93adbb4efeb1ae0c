"""The PIM URL check: what /activate accepts, and every way a forged pim_url is refused."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from flask.testing import FlaskClient

from app.pim_url import PimUrlPolicy, PimUrlRefused, resolve_addresses

PUBLIC = {"my-pim.cloud.akeneo.com": ["35.190.10.10"], "pim.example.com": ["2600:1901::1"]}


def fake_dns(host: str) -> list[str]:
    """A resolver with a few public names, a few private ones, and nothing else."""
    table = PUBLIC | {
        "intranet.example.com": ["10.1.2.3"],
        "mixed.example.com": ["35.190.10.11", "192.168.1.5"],
        "metadata.example.com": ["169.254.169.254"],
        "mapped.example.com": ["::ffff:127.0.0.1"],
    }
    if host in table:
        return table[host]
    try:
        return [socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, host))]
    except OSError:
        pass
    if ":" in host:
        return [host]
    raise socket.gaierror("unknown host")


OPEN = PimUrlPolicy(("*",))  # any public host


@pytest.mark.parametrize(
    ("raw", "origin"),
    [
        ("https://my-pim.cloud.akeneo.com", "https://my-pim.cloud.akeneo.com"),
        ("https://my-pim.cloud.akeneo.com/", "https://my-pim.cloud.akeneo.com"),
        ("  https://MY-PIM.cloud.akeneo.com/some/path?x=1#y ", "https://my-pim.cloud.akeneo.com"),
        ("https://my-pim.cloud.akeneo.com:443", "https://my-pim.cloud.akeneo.com"),
        ("https://my-pim.cloud.akeneo.com:8443", "https://my-pim.cloud.akeneo.com:8443"),
        ("https://pim.example.com.", "https://pim.example.com"),
    ],
)
def test_a_public_pim_url_is_reduced_to_its_origin(raw: str, origin: str) -> None:
    assert OPEN.check(raw, fake_dns) == origin


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("my-pim.cloud.akeneo.com", "https"),
        ("ftp://my-pim.cloud.akeneo.com", "https"),
        ("javascript:alert(1)", "https"),
        ("http://my-pim.cloud.akeneo.com", "AKENEO_PIM_ALLOW_HTTP"),
        ("https://user:pw@my-pim.cloud.akeneo.com", "user name"),
        ("https://evil.com@my-pim.cloud.akeneo.com", "user name"),
        ("https://my-pim.cloud.akeneo.com:99999", "malformed"),
        ("https://my pim.com", "malformed"),
        ("https://my-pim.cloud.akeneo.com\\@evil.com", "malformed"),
        ("https://", "no host"),
        ("https://-bad-.example.com", "not a valid host"),
        ("https://exa_mple.com", "not a valid host"),
        ("https://" + "a" * 2100 + ".com", "malformed"),
        ("https://localhost", "private or local"),
        ("https://127.0.0.1", "private or local"),
        ("https://[::1]", "private or local"),
        ("https://0.0.0.0", "private or local"),
        ("https://10.0.0.1", "private or local"),
        ("https://172.16.0.1", "private or local"),
        ("https://192.168.0.1", "private or local"),
        ("https://169.254.169.254", "private or local"),
        ("https://224.0.0.1", "private or local"),
        ("https://[fe80::1]", "private or local"),
        ("https://[::ffff:127.0.0.1]", "private or local"),
        ("https://2130706433", "not a valid host"),
        ("https://0x7f000001", "not a valid host"),
        ("https://127.1", "not a valid host"),
        ("https://0177.0.0.1", "not a valid host"),
        ("https://intranet.example.com", "private or local"),
        ("https://mixed.example.com", "private or local"),
        ("https://metadata.example.com", "private or local"),
        ("https://mapped.example.com", "private or local"),
        ("https://nowhere.example.com", "does not resolve"),
        # IPv6 forms that carry an IPv4 address are judged by it
        ("https://[64:ff9b::7f00:1]", "private or local"),  # NAT64 of 127.0.0.1
        ("https://[64:ff9b::a9fe:a9fe]", "private or local"),  # NAT64 of 169.254.169.254
        ("https://[64:ff9b:1::a9fe:a9fe]", "private or local"),  # local-use NAT64
        ("https://[2002:a9fe:a9fe::1]", "private or local"),  # 6to4 of 169.254.169.254
        ("https://[::7f00:1]", "private or local"),  # IPv4-compatible 127.0.0.1
        ("https://[::ffff:0:7f00:1]", "private or local"),  # IPv4-translated 127.0.0.1
        ("https://[fec0::1]", "private or local"),  # deprecated site-local
        ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "private or local"),  # Teredo
    ],
)
def test_a_forged_pim_url_is_refused_with_its_reason(raw: str | None, reason: str) -> None:
    def resolve(host: str) -> list[str]:
        return ["127.0.0.1"] if host == "localhost" else fake_dns(host)

    with pytest.raises(PimUrlRefused) as refused:
        OPEN.check(raw, resolve)
    assert reason in refused.value.message


@pytest.mark.parametrize(
    "address", ["64:ff9b::2311:a0a", "2002:2311:a0a::1", "2600:1901::1", "::ffff:35.17.10.10"]
)
def test_an_ipv6_address_that_carries_a_public_ipv4_is_accepted(address: str) -> None:
    assert OPEN.check(f"https://[{address}]", fake_dns).startswith("https://[")


def test_by_default_only_akeneos_cloud_is_accepted_and_the_refusal_says_how_to_allow() -> None:
    default = PimUrlPolicy()
    assert default.check("https://my-pim.cloud.akeneo.com", fake_dns).endswith(".akeneo.com")
    with pytest.raises(PimUrlRefused) as refused:
        default.check("https://pim.example.com", fake_dns)  # public, but not listed
    assert refused.value.message == (
        "The PIM host pim.example.com is not in AKENEO_PIM_ALLOWED_HOSTS (*.cloud.akeneo.com). "
        "If this PIM is yours, add it: AKENEO_PIM_ALLOWED_HOSTS=*.cloud.akeneo.com,pim.example.com"
    )


def test_a_pattern_with_a_port_admits_that_port_only() -> None:
    policy = PimUrlPolicy(("pim.example.com:8443", "other.example.com", "[::1]:8001"), True)
    assert policy.check("https://pim.example.com:8443") == "https://pim.example.com:8443"
    assert policy.check("https://other.example.com:9000") == "https://other.example.com:9000"
    assert policy.check("http://[::1]:8001") == "http://[::1]:8001"
    for refused in ("https://pim.example.com", "https://pim.example.com:9443", "http://[::1]"):
        with pytest.raises(PimUrlRefused, match="not in AKENEO_PIM_ALLOWED_HOSTS"):
            policy.check(refused)


def test_a_resolver_that_hangs_is_given_up_on(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(*args: object, **kwargs: object) -> list[object]:
        release.wait(10)
        return []

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        resolve_addresses("slow.example.com", timeout=0.3)
    assert time.monotonic() - started < 2
    with pytest.raises(PimUrlRefused, match="did not resolve in time"):
        OPEN.check("https://slow.example.com", lambda host: resolve_addresses(host, timeout=0.1))
    release.set()


def test_the_allowlist_admits_listed_hosts_and_only_them() -> None:
    policy = PimUrlPolicy(("*.cloud.akeneo.com", "pim.example.com", "127.0.0.1"), allow_http=True)

    def no_dns(host: str) -> list[str]:
        raise AssertionError("an allowlisted host needs no resolution")

    assert policy.check("https://a.cloud.akeneo.com", no_dns) == "https://a.cloud.akeneo.com"
    assert policy.check("https://x.y.cloud.akeneo.com", no_dns) == "https://x.y.cloud.akeneo.com"
    assert policy.check("http://127.0.0.1:8001", no_dns) == "http://127.0.0.1:8001"
    for refused in (
        "https://cloud.akeneo.com",
        "https://evilcloud.akeneo.com.evil.io",
        "https://a.cloud.akeneo.com.evil.io",
        "https://pim.example.com.evil.io",
        "https://10.0.0.1",
    ):
        with pytest.raises(PimUrlRefused, match="not in AKENEO_PIM_ALLOWED_HOSTS"):
            policy.check(refused, no_dns)


@pytest.mark.parametrize(
    "pim_url",
    ["https://evil.example.org", "ftp://pim-a.test", "http://user@pim-a.test", "javascript:x"],
)
def test_activate_refuses_a_bad_pim_url_with_a_400_page_and_no_redirect(
    client: FlaskClient, pim_url: str
) -> None:
    response = client.get("/activate", query_string={"pim_url": pim_url})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "This PIM address cannot be used" in response.get_data(as_text=True)


def test_activate_without_pim_url_explains_where_to_start(client: FlaskClient) -> None:
    response = client.get("/activate")
    assert response.status_code == 400
    assert "Open the App from your PIM" in response.get_data(as_text=True)
