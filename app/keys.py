"""The App's own keys: the generated SECRET_KEY in the instance folder, and the Fernet keys that
encrypt tokens at rest (given, or derived from SECRET_KEY). Used by config.py only."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ConfigError


def fernet_keys(raw: str) -> tuple[str, ...]:
    """TOKEN_ENCRYPTION_KEY's keys, each checked to be a Fernet key; ConfigError if not."""
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    for position, key in enumerate(keys, start=1):
        try:
            decoded = base64.urlsafe_b64decode(key.encode())
        except ValueError:
            decoded = b""
        if len(decoded) != 32:
            raise ConfigError(
                f"TOKEN_ENCRYPTION_KEY key #{position} is not a Fernet key. Make one with: "
                "python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            )
    return keys


def derive_fernet_key(secret_key: str) -> str:
    """The token store's Fernet key derived from SECRET_KEY (when none is given)."""
    # a separate key for tokens, so that the cookie-signing key never encrypts data itself
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"akeneo-app token store")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode())).decode()


def instance_secret_key(instance: Path) -> tuple[str, bool]:
    """The generated SECRET_KEY from the instance folder, created (mode 600) once; new or not."""
    try:
        return _read_or_create_key(instance / "secret_key")
    except OSError as error:
        raise ConfigError(
            f"SECRET_KEY is not set and {instance} is not writable ({error.strerror}): set "
            "SECRET_KEY, or make that folder writable (in a container, mount a volume there)."
        ) from None


def _read_or_create_key(path: Path) -> tuple[str, bool]:
    if path.exists():
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    draft = path.parent / f".secret_key.{os.getpid()}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key)
    try:
        # link() never replaces: when several workers start at once, the first key wins for all
        os.link(draft, path)
    except FileExistsError:
        return path.read_text().strip(), False
    finally:
        draft.unlink()
    return key, True
