"""Settings: defaults, validation with a sentence, the generated SECRET_KEY."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask.testing import FlaskClient

from app import create_app
from app.config import DEFAULT_SCOPES, LOCAL_SETUP_FILE, Settings
from app.errors import ConfigError
from tests.pims import app_config

KEY = "k" * 40


def load(tmp_path: Path, **values: str) -> Settings:
    return Settings.from_mapping(values, instance_path=str(tmp_path))


def test_defaults_are_safe_and_least_privilege(tmp_path: Path) -> None:
    settings = load(tmp_path, SECRET_KEY=KEY)
    assert settings.scopes == tuple(DEFAULT_SCOPES.split())
    assert settings.database_url == f"sqlite:///{tmp_path / 'akeneo-app.db'}"
    assert settings.pim_allowed_hosts == ("*.cloud.akeneo.com",)  # Akeneo's cloud only
    assert settings.warnings == ()
    assert settings.pim_allow_http is False
    assert settings.http_timeout == 10.0
    assert settings.trusted_proxies == 0
    assert settings.is_configured is False


def test_the_public_url_is_https_unless_local_pims_are_allowed(tmp_path: Path) -> None:
    public = "https://app.example.com/"
    assert load(tmp_path, SECRET_KEY=KEY, AKENEO_PUBLIC_URL=public).public_url == public[:-1]
    with pytest.raises(ConfigError, match="AKENEO_PUBLIC_URL must be the App's https"):
        load(tmp_path, SECRET_KEY=KEY, AKENEO_PUBLIC_URL="http://app.example.com")
    local = load(
        tmp_path,
        SECRET_KEY=KEY,
        AKENEO_PUBLIC_URL="http://127.0.0.1:5000",
        AKENEO_PIM_ALLOW_HTTP="1",
    )
    assert local.public_url == "http://127.0.0.1:5000"


def test_ids_stay_strings(tmp_path: Path) -> None:
    assert load(tmp_path, SECRET_KEY=KEY, AKENEO_CLIENT_ID="0123").client_id == "0123"


def test_a_missing_secret_key_is_generated_once_with_mode_600(tmp_path: Path) -> None:
    first = load(tmp_path)
    second = load(tmp_path)
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 48
    assert "SECRET_KEY is not set: generated one" in first.warnings[0]
    assert second.warnings == ()  # said once, when it was generated
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600


def test_the_token_key_is_derived_from_the_secret_key_unless_given(tmp_path: Path) -> None:
    derived = load(tmp_path, SECRET_KEY="a" * 32).encryption_keys
    assert derived != load(tmp_path, SECRET_KEY="b" * 32).encryption_keys
    Fernet(derived[0])  # a usable key
    key1, key2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    given = load(tmp_path, SECRET_KEY="a" * 32, TOKEN_ENCRYPTION_KEY=f"{key1}, {key2}")
    # the key derived from SECRET_KEY stays last: moving to explicit keys loses no token
    assert given.encryption_keys == (key1, key2, derived[0])


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AKENEO_SCOPES", "read_products read_prodcuts", "read_prodcuts"),
        ("TOKEN_ENCRYPTION_KEY", "not-a-key", "not a Fernet key"),
        ("AKENEO_PIM_ALLOW_HTTP", "maybe", "1 or 0"),
        ("AKENEO_HTTP_TIMEOUT", "0", "between 0 and 300"),
        ("AKENEO_HTTP_TIMEOUT", "ten", "between 0 and 300"),
        ("TRUSTED_PROXIES", "-1", "number of proxies"),
        ("SECRET_KEY", "short-but-set", "13 characters long; it needs at least 32"),
        ("AKENEO_PIM_ALLOWED_HOSTS", "pim.example.com:http", "not a host pattern"),
        ("AKENEO_PIM_ALLOWED_HOSTS", "pim.example.com:70000", "not a host pattern"),
        ("AKENEO_PIM_ALLOWED_HOSTS", "https://pim.example.com", "not a host pattern"),
    ],
)
def test_a_wrong_setting_fails_fast_with_a_sentence(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, **{"SECRET_KEY": KEY, name: value})


def test_an_unconfigured_app_explains_how_to_get_credentials(tmp_path: Path) -> None:
    client = create_app(
        {"TESTING": True, "SECRET_KEY": KEY, "DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
    ).test_client()
    welcome = client.get("/").get_data(as_text=True)
    assert "AKENEO_CLIENT_ID\n      is missing" in welcome
    response = client.get("/activate", query_string={"pim_url": "https://pim.example.com"})
    assert response.status_code == 503
    assert "Register the App in your PIM" in response.get_data(as_text=True)


def test_the_welcome_page_gives_the_urls_to_register(tmp_path: Path) -> None:
    configured = app_config(tmp_path, AKENEO_PUBLIC_URL="https://app.example.com")
    client = create_app(configured).test_client()
    html = client.get("/", base_url="https://forged.example").get_data(as_text=True)
    assert '<code id="activate-url">https://app.example.com/activate</code>' in html
    assert '<code id="callback-url">https://app.example.com/callback</code>' in html
    assert "forged" not in html


def test_without_a_public_url_the_welcome_page_says_to_set_it(tmp_path: Path) -> None:
    client = create_app(app_config(tmp_path, AKENEO_PUBLIC_URL=None)).test_client()
    html = client.get("/", base_url="https://abc.ngrok-free.app").get_data(as_text=True)
    assert '<code id="activate-url">https://abc.ngrok-free.app/activate</code>' in html
    assert "AKENEO_PUBLIC_URL\n      is missing" in html


def test_any_public_host_is_a_choice_the_app_warns_about_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load(tmp_path, SECRET_KEY=KEY, AKENEO_PIM_ALLOWED_HOSTS="*, Pim.Example.com:8443")
    assert settings.pim_allowed_hosts == ("*", "pim.example.com:8443")
    create_app(
        {"TESTING": True, "SECRET_KEY": KEY, "DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
        | {"AKENEO_PIM_ALLOWED_HOSTS": "*"}
    )
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "any PIM with public addresses" in warning.getMessage()
    assert "mix up" in warning.getMessage()


def test_the_unconfigured_page_names_only_what_is_missing(tmp_path: Path) -> None:
    client = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": KEY,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
            "AKENEO_CLIENT_ID": "an-id",
        }
    ).test_client()
    response = client.get("/activate", query_string={"pim_url": "https://p.cloud.akeneo.com"})
    assert response.status_code == 503
    html = response.get_data(as_text=True)
    assert "AKENEO_CLIENT_SECRET is not set" in html and "AKENEO_CLIENT_ID and" not in html


def test_the_welcome_page_tells_ngrok_the_port_the_app_answers_on(client: FlaskClient) -> None:
    html = client.get("/", base_url="http://127.0.0.1:8010").get_data(as_text=True)
    assert "ngrok http 8010" in html


def test_in_make_runs_local_mode_the_welcome_page_points_to_the_local_pim(
    tmp_path: Path,
) -> None:
    config = {"TESTING": True, "SECRET_KEY": KEY, "DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
    config |= {"AKENEO_CLIENT_ID": "id", "AKENEO_CLIENT_SECRET": "secret"}
    local = create_app({**config, "LOCAL_PIM_URL": "http://127.0.0.1:8001"}).test_client()
    html = local.get("/").get_data(as_text=True)
    assert 'id="local-pim" href="http://127.0.0.1:8001"' in html
    assert "Register the App in your PIM" not in html  # make run did it


def test_nothing_configured_takes_the_local_set_up_make_run_wrote_whole(tmp_path: Path) -> None:
    (tmp_path / LOCAL_SETUP_FILE).write_text(
        'AKENEO_CLIENT_ID="local-id"\nAKENEO_CLIENT_SECRET="local-secret"\n'
        'AKENEO_PIM_ALLOW_HTTP="1"\nAKENEO_PUBLIC_URL="http://127.0.0.1:8000"\n'
    )
    local = Settings.load(str(tmp_path), {"SECRET_KEY": KEY})
    assert (local.client_id, local.client_secret) == ("local-id", "local-secret")
    assert local.public_url == "http://127.0.0.1:8000"
    # a configured App takes nothing of it: not even what it left unset
    real = Settings.load(str(tmp_path), {"SECRET_KEY": KEY, "AKENEO_CLIENT_ID": "real-id"})
    assert real.client_id == "real-id" and real.client_secret is None
    assert real.public_url is None and not real.pim_allow_http
