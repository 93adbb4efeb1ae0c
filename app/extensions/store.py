"""The extensions feature's tables: the App's extensions in each PIM (secrets encrypted like
tokens), and the iframe tokens already used (each is accepted once)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Index, String, Text, delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, Encryption, Unreadable, now, upsert_statement


class ExtensionRow(Base):
    """One of the App's extensions in one PIM."""

    __tablename__ = "ui_extensions"
    __table_args__ = (Index("ix_ui_extensions_key", "key", unique=True),)

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    #: in the extension's URL (/extensions/<key>/…): tells which PIM and secret; not a secret
    key: Mapped[str] = mapped_column(String(32))
    uuid: Mapped[str | None] = mapped_column(String(64))  # the PIM's id of it
    version: Mapped[str | None] = mapped_column(String(32))
    secret: Mapped[str] = mapped_column(Text)  # encrypted


class UsedTokenRow(Base):
    """An iframe token (its `jti`) the App accepted, until it expires."""

    __tablename__ = "ui_extension_tokens"

    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime]


@dataclass(frozen=True)
class Extension:
    pim_url: str
    name: str
    key: str
    uuid: str | None
    version: str | None
    secret: str


class ExtensionStore:
    """The feature's rows, over the App's database engine."""

    def __init__(self, engine: Engine, encryption: Encryption) -> None:
        self.engine, self.encryption = engine, encryption
        self._use = upsert_statement(
            engine.dialect.name,
            UsedTokenRow.__table__,  # type: ignore[arg-type]
            key=("jti",),
            columns=("jti",),  # a token seen before changes nothing: DO NOTHING
        )

    def of_pim(self, pim_url: str) -> dict[str, Extension]:
        """The PIM's extensions by name (made on first use, with a new key and secret)."""
        with self.engine.connect() as db:
            rows = db.execute(select(ExtensionRow).where(ExtensionRow.pim_url == pim_url)).all()
        return {r.name: found for r in rows if (found := self._extension(r._mapping))}

    def by_key(self, key: str) -> Extension | None:
        with self.engine.connect() as db:
            row = db.execute(select(ExtensionRow).where(ExtensionRow.key == key)).first()
        return self._extension(row._mapping) if row else None

    def new(self, pim_url: str, name: str) -> Extension:
        """A new key and secret for an extension about to be created (or whose secret is lost)."""
        secret = secrets.token_urlsafe(48)  # 64 characters: Akeneo asks for 32 at least
        values = {"key": secrets.token_hex(16), "secret": self.encryption.encrypt(secret)}
        with self.engine.begin() as db:
            moved = db.execute(
                update(ExtensionRow)
                .where(ExtensionRow.pim_url == pim_url, ExtensionRow.name == name)
                .values(uuid=None, version=None, **values)
            ).rowcount
            if not moved:
                db.execute(insert(ExtensionRow).values(pim_url=pim_url, name=name, **values))
        return Extension(pim_url, name, values["key"], None, None, secret)

    def registered(self, pim_url: str, name: str, uuid: str, version: str) -> None:
        with self.engine.begin() as db:
            db.execute(
                update(ExtensionRow)
                .where(ExtensionRow.pim_url == pim_url, ExtensionRow.name == name)
                .values(uuid=uuid, version=version)
            )

    def use_token(self, jti: str, expires_at: datetime) -> bool:
        """Accept a token id once: False when it was used before."""
        with self.engine.begin() as db:
            return bool(db.execute(self._use, {"jti": jti, "expires_at": expires_at}).rowcount)

    def trim(self) -> None:
        """Forget the ids of expired tokens (PyJWT refuses those tokens anyway)."""
        with self.engine.begin() as db:
            db.execute(delete(UsedTokenRow).where(UsedTokenRow.expires_at < now()))

    def forget(self, pim_url: str) -> None:
        with self.engine.begin() as db:
            db.execute(delete(ExtensionRow).where(ExtensionRow.pim_url == pim_url))

    def _extension(self, r: object) -> Extension | None:
        row = dict(r)  # type: ignore[call-overload]
        try:
            secret = self.encryption.decrypt(row["secret"])
        except Unreadable:
            return None  # an old key is gone: made again at the next connection
        return Extension(
            row["pim_url"], row["name"], row["key"], row["uuid"], row["version"], secret
        )
