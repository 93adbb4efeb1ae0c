"""id_token verification: a PIM's RS256 token is accepted, every forged or stale one refused."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from flask.testing import FlaskClient

from app.akeneo import PUBLIC_KEY_PATH, TOKEN_PATH
from app.errors import PimError
from app.identity import IdTokenRefused, IdTokenVerifier, User
from devpim.state import new_signing_key
from tests.pims import FakePim, PimUser

PIM = "https://my-pim.cloud.akeneo.com"
CLIENT = "206f450e-client"
KEY, CERT = new_signing_key()
OTHER_KEY, OTHER_CERT = new_signing_key()


def claims(**changes: Any) -> dict[str, Any]:
    now = time.time()
    base = {
        "iss": PIM,
        "jti": "c76d558d",
        "sub": "c6acd619-sub",
        "aud": CLIENT,
        "iat": now,
        "exp": now + 3600,
        "email": "john.doe@example.com",
        "email_verified": False,
        "firstname": "John",
        "lastname": "Doe",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: Any = KEY, headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(payload, key, algorithm="RS256", headers=headers)


class KeyServer:
    """The PIM's public-key endpoint, counting fetches."""

    def __init__(self, pem: str = CERT) -> None:
        self.pem = pem
        self.fetches = 0

    def __call__(self, pim_url: str) -> str:
        assert pim_url == PIM
        self.fetches += 1
        return self.pem


def verify(token: str, keys: KeyServer | None = None) -> User:
    return IdTokenVerifier(keys or KeyServer()).verify(token, pim_url=PIM, client_id=CLIENT)


def test_a_pim_id_token_gives_the_user() -> None:
    assert verify(sign(claims())) == User("c6acd619-sub", "John Doe", "john.doe@example.com")


def test_name_and_email_are_optional() -> None:
    user = verify(sign(claims(email=None, firstname=None, lastname=None)))
    assert user == User("c6acd619-sub", None, None)


def test_a_bare_public_key_pem_is_accepted_too() -> None:
    pem = (
        KEY.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert verify(sign(claims()), KeyServer(pem)).sub == "c6acd619-sub"


def test_clock_skew_within_two_minutes_is_tolerated() -> None:
    now = time.time()
    assert verify(sign(claims(iat=now + 100, exp=now - 100))).sub


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (claims(iss="https://other-pim.cloud.akeneo.com"), "another PIM"),
        (claims(iss=PIM + "/"), "another PIM"),
        (claims(aud="another-app"), "another App"),
        (claims(aud=[CLIENT, "another-app"]), "another App"),
        (claims(exp=time.time() - 600), "expired"),
        (claims(iat=time.time() + 600), "future"),
        (claims(sub=None), "'sub'"),
        (claims(iat=None), "'iat'"),
        (claims(exp=None), "'exp'"),
        (claims(sub=""), "user id"),
    ],
)
def test_a_token_with_wrong_claims_is_refused(payload: dict[str, Any], reason: str) -> None:
    with pytest.raises(IdTokenRefused, match=reason):
        verify(sign(payload))


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("not-a-jwt", "malformed"),
        ("a.b.c", "malformed"),
        ("x" * 20000, "too large"),
        (jwt.encode(claims(), b"a-shared-secret-of-32-bytes-long!", algorithm="HS256"), "RS256"),
        (jwt.encode(claims(), None, algorithm="none"), "RS256"),
        (sign(claims(), headers={"jku": "https://evil.example/keys"}), "names its own key"),
        (sign(claims(), headers={"x5u": "https://evil.example/cert"}), "names its own key"),
        (
            sign(claims(), headers={"jwk": {"kty": "RSA", "n": "x", "e": "AQAB"}}),
            "names its own key",
        ),
        (sign(claims(), headers={"kid": "../../etc/passwd"}), "names its own key"),
    ],
)
def test_a_forged_or_malformed_token_is_refused(token: str, reason: str) -> None:
    with pytest.raises(IdTokenRefused, match=reason):
        verify(token)


def test_a_token_signed_by_another_key_is_refused() -> None:
    with pytest.raises(IdTokenRefused, match="signature"):
        verify(sign(claims(), OTHER_KEY))


def test_the_key_is_cached_between_verifications() -> None:
    keys = KeyServer()
    verifier = IdTokenVerifier(keys)
    for _ in range(3):
        verifier.verify(sign(claims()), pim_url=PIM, client_id=CLIENT)
    assert keys.fetches == 1


def test_a_rotated_key_is_fetched_again_once() -> None:
    keys = KeyServer()
    verifier = IdTokenVerifier(keys)
    verifier.verify(sign(claims()), pim_url=PIM, client_id=CLIENT)
    keys.pem = OTHER_CERT  # the PIM rotates its key pair
    assert verifier.verify(sign(claims(), OTHER_KEY), pim_url=PIM, client_id=CLIENT).sub
    assert keys.fetches == 2


def test_a_bad_signature_with_a_fresh_key_is_not_fetched_again() -> None:
    keys = KeyServer()
    with pytest.raises(IdTokenRefused):
        IdTokenVerifier(keys).verify(sign(claims(), OTHER_KEY), pim_url=PIM, client_id=CLIENT)
    assert keys.fetches == 1


def test_the_key_expires_from_the_cache() -> None:
    keys, now = KeyServer(), [0.0]
    verifier = IdTokenVerifier(keys, ttl=300, clock=lambda: now[0])
    verifier.verify(sign(claims()), pim_url=PIM, client_id=CLIENT)
    now[0] = 301
    verifier.verify(sign(claims()), pim_url=PIM, client_id=CLIENT)
    assert keys.fetches == 2


@pytest.mark.parametrize(
    "pem",
    [
        "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    ],
)
def test_a_key_that_is_not_a_pem_fails_closed(pem: str) -> None:
    with pytest.raises(PimError, match="not a valid PEM"):
        verify(sign(claims()), KeyServer(pem))


# -- through the App: a token that fails is refused with 502, and nothing is stored ---------------


def test_an_id_token_signed_by_another_key_refuses_the_connection(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    pim.answer("GET", PUBLIC_KEY_PATH, body={"public_key": OTHER_CERT})
    response = user.connect()
    assert response.status_code == 502
    assert "signature is not valid" in response.get_data(as_text=True)
    assert client.application.extensions["akeneo_store"].connections() == []
    assert len(pim.calls(PUBLIC_KEY_PATH)) == 1  # fresh key: no second fetch


@pytest.mark.parametrize(
    ("status", "raw", "content_type"),
    [
        (500, b'"No OpenId keys"', "application/json"),
        (200, b"<html>login</html>", "text/html"),
        (200, b'{"public_key": "not a pem"}', "application/json"),
        (200, b'{"public_key": 42}', "application/json"),
        (200, b"42", "application/json"),
        (301, b"", "text/html"),
    ],
)
def test_a_broken_key_endpoint_fails_closed(
    user: PimUser, client: FlaskClient, pim: FakePim, status: int, raw: bytes, content_type: str
) -> None:
    pim.answer("GET", PUBLIC_KEY_PATH, status=status, raw=raw, content_type=content_type)
    response = user.connect()
    assert response.status_code == 502
    assert client.application.extensions["akeneo_store"].connections() == []


def test_an_id_token_for_another_app_refuses_the_connection(
    user: PimUser, client: FlaskClient, pim: FakePim
) -> None:
    token = jwt.encode(
        claims(iss=pim.url, aud="someone-else"), pim.state.signing_key, algorithm="RS256"
    )
    pim.answer(
        "POST",
        TOKEN_PATH,
        body={
            "access_token": "t0k3n",
            "token_type": "bearer",
            "scope": "openid",
            "id_token": token,
        },
    )
    response = user.connect()
    assert response.status_code == 502
    assert "meant for another App" in response.get_data(as_text=True)
    assert client.application.extensions["akeneo_store"].connections() == []
