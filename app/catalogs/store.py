"""The catalogs feature's tables: the App's catalog id in each PIM, and creation claims."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String, delete, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, now, upsert

#: a claim this old was left by a request that died (a live holder renews it: `renew_claim`)
CLAIM_TTL = timedelta(seconds=30)


class CatalogRow(Base):
    """The App's catalog in a PIM: its id there (the PIM keeps the rest)."""

    __tablename__ = "app_catalogs"

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    catalog_id: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime]


class SchemaPushedRow(Base):
    """The product mapping schema the App last pushed to its catalog in a PIM (its hash)."""

    __tablename__ = "catalog_schemas"

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    schema_hash: Mapped[str] = mapped_column(String(64))
    pushed_at: Mapped[datetime]


class CatalogClaimRow(Base):
    """A request creating the App's catalog in a PIM right now: one at a time per PIM."""

    __tablename__ = "catalog_claims"

    pim_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    claimed_at: Mapped[datetime]


_catalogs = CatalogRow.__table__
_schemas = SchemaPushedRow.__table__


class CatalogStore:
    """Which catalog is the App's in each PIM; who may create one now."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def catalog_id(self, pim_url: str) -> str | None:
        """The id of the App's catalog in `pim_url`, if the App found or created one."""
        with self.engine.connect() as db:
            query = select(CatalogRow.catalog_id).where(CatalogRow.pim_url == pim_url)
            return db.execute(query).scalar()

    def save(self, pim_url: str, catalog_id: str) -> None:
        """Remember the App's catalog in `pim_url` (safe when several requests do it at once)."""
        with self.engine.begin() as db:
            row = {"pim_url": pim_url, "catalog_id": catalog_id, "updated_at": now()}
            upsert(db, _catalogs, row, key=("pim_url",))  # type: ignore[arg-type]

    def schema_hash(self, pim_url: str) -> str | None:
        """The hash of the schema the App last pushed to `pim_url`."""
        with self.engine.connect() as db:
            query = select(SchemaPushedRow.schema_hash).where(SchemaPushedRow.pim_url == pim_url)
            return db.execute(query).scalar()

    def save_schema_hash(self, pim_url: str, schema_hash: str) -> None:
        """Remember the schema the App pushed to `pim_url`."""
        with self.engine.begin() as db:
            row = {"pim_url": pim_url, "schema_hash": schema_hash, "pushed_at": now()}
            upsert(db, _schemas, row, key=("pim_url",))  # type: ignore[arg-type]

    def forget(self, pim_url: str) -> None:
        """The App no longer knows `pim_url`: neither its catalog, its schema nor a claim."""
        with self.engine.begin() as db:
            db.execute(delete(CatalogRow).where(CatalogRow.pim_url == pim_url))
            db.execute(delete(SchemaPushedRow).where(SchemaPushedRow.pim_url == pim_url))
            db.execute(delete(CatalogClaimRow).where(CatalogClaimRow.pim_url == pim_url))

    def claim(self, pim_url: str) -> bool:
        """True for the one request that may create the catalog in `pim_url` now (a claim older
        than CLAIM_TTL, left by a crashed request, is taken over)."""
        moment = now()
        try:
            with self.engine.begin() as db:
                db.execute(
                    delete(CatalogClaimRow).where(
                        CatalogClaimRow.pim_url == pim_url,
                        CatalogClaimRow.claimed_at < moment - CLAIM_TTL,
                    )
                )
                db.execute(insert(CatalogClaimRow).values(pim_url=pim_url, claimed_at=moment))
        except IntegrityError:
            return False
        return True

    def release(self, pim_url: str) -> None:
        """The catalog is created (or could not be): others may go on."""
        with self.engine.begin() as db:
            db.execute(delete(CatalogClaimRow).where(CatalogClaimRow.pim_url == pim_url))
