"""The tokens of API connections (Connect > Connection settings: the password grant), kept
encrypted like App tokens, so that every process shares one token and its refresh."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import String, Text, delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, Encryption, Unreadable, upsert_statement
from .errors import TokenUnreadable

log = logging.getLogger(__name__)


class PasswordGrantRow(Base):
    """The current tokens of an API connection's password grant, encrypted like App tokens."""

    __tablename__ = "connection_tokens"

    key: Mapped[str] = mapped_column(String(2400), primary_key=True)  # pim|client id|username
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[float]


_grants = Base.metadata.tables[PasswordGrantRow.__tablename__]


@dataclass(frozen=True)
class PasswordGrantTokens:
    """An API connection's access token, its refresh token and when it expires (epoch s)."""

    access_token: str
    refresh_token: str | None
    expires_at: float

    def __repr__(self) -> str:
        return f"PasswordGrantTokens(expires_at={self.expires_at})"


class PasswordGrants:
    """Each API connection's current tokens, by `pim_url|client id|username`."""

    def __init__(self, engine: Engine, encryption: Encryption) -> None:
        self.engine, self.encryption = engine, encryption
        self._save = upsert_statement(
            engine.dialect.name,
            _grants,
            key=("key",),
            columns=("key", "access_token", "refresh_token", "expires_at"),
        )

    def get(self, key: str) -> PasswordGrantTokens | None:
        """The stored tokens of an API connection, decrypted; None when there are none or when
        no key decrypts them any more (the password grant then gets new ones)."""
        pim_url = key.split("|", 1)[0]
        with self.engine.connect() as db:
            row = db.execute(select(_grants).where(_grants.c.key == key)).first()
        if row is None:
            return None
        try:
            return PasswordGrantTokens(
                access_token=self._decrypt(row.access_token, pim_url),
                refresh_token=self._decrypt(row.refresh_token, pim_url)
                if row.refresh_token
                else None,
                expires_at=row.expires_at,
            )
        except TokenUnreadable:
            log.warning("connection tokens unreadable pim=%s: fetched again", pim_url)
            return None

    def save(self, key: str, tokens: PasswordGrantTokens) -> None:
        """Store (or replace) an API connection's tokens, encrypted."""
        with self.engine.begin() as db:
            db.execute(
                self._save,
                {
                    "key": key,
                    "access_token": self.encryption.encrypt(tokens.access_token),
                    "refresh_token": self.encryption.encrypt(tokens.refresh_token)
                    if tokens.refresh_token
                    else None,
                    "expires_at": tokens.expires_at,
                },
            )

    def forget(self, pim_url: str) -> None:
        """Delete the tokens of every API connection to `pim_url`."""
        with self.engine.begin() as db:
            of_pim = _grants.c.key.startswith(f"{pim_url}|", autoescape=True)  # `_` is no wildcard
            db.execute(delete(_grants).where(of_pim))

    def rotate(self) -> int:
        """Re-encrypt every stored token with the first key; how many rows were rewritten."""
        with self.engine.begin() as db:
            rows = db.execute(
                select(_grants.c.key, _grants.c.access_token, _grants.c.refresh_token)
            ).all()
            for key, access, refresh in rows:
                pim_url = key.split("|", 1)[0]
                db.execute(
                    update(_grants)
                    .where(_grants.c.key == key)
                    .values(
                        access_token=self._rotate(access, pim_url),
                        refresh_token=self._rotate(refresh, pim_url) if refresh else None,
                    )
                )
        return len(rows)

    def _decrypt(self, ciphertext: str, pim_url: str) -> str:
        try:
            return self.encryption.decrypt(ciphertext)
        except Unreadable:
            raise _unreadable(pim_url) from None

    def _rotate(self, ciphertext: str, pim_url: str) -> str:
        try:
            return self.encryption.rotate(ciphertext)
        except Unreadable:
            raise _unreadable(pim_url) from None


def _unreadable(pim_url: str) -> TokenUnreadable:
    return TokenUnreadable(
        f"The stored tokens of an API connection to {pim_url} were encrypted with a key the App "
        "no longer has.",
        pim_url=pim_url,
    )
