"""Test databases on either backend: a fresh SQLite file, or a fresh PostgreSQL database per test.

Each PostgreSQL test gets its own database, copied from a template migrated once per session
(a copy is cheaper than running the migrations again); tests of the migrations themselves
start from an empty database instead.
"""
from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

_names = itertools.count(1)


def database_url(server_url: str, dbname: str) -> str:
    """The server's URL with another database name (URLs only: that is what POLICYBOT_DATABASE_URL takes)."""
    return urlunsplit(urlsplit(server_url)._replace(path="/" + dbname))


class PgServer:
    """Databases for tests on one server: our throwaway cluster, or $POLICYBOT_TEST_DATABASE_URL."""

    def __init__(self, url: str, cluster=None):
        self.url = url
        self.cluster = cluster  # None for a server the developer runs: then we only drop what we made
        self.template = self.create(template=None)
        from bot.storage.postgres import PostgresStore
        PostgresStore(database_url(url, self.template)).close()

    def create(self, template: str | None = "") -> str:
        """A new empty database, or (by default) a copy of the migrated template; returns its name."""
        name = f"policybot_test_{os.getpid()}_{next(_names)}"
        source = self.template if template == "" else template
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{source}"' if source else ""))
        return name

    def drop(self, name: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.destroy()
        else:
            self.drop(self.template)


class Storage:
    def __init__(self, kind: str, tmp_path: Path, server: PgServer | None = None, migrated: bool = True):
        self.kind = kind
        self.server = server
        self.stores: list = []
        if kind == "sqlite":
            self.path = tmp_path / "data" / "incidents.db"
            self.url = None
            self.env = {"POLICYBOT_DATABASE": str(self.path)}
        else:
            self.dbname = server.create() if migrated else server.create(template=None)
            self.url = database_url(server.url, self.dbname)
            self.env = {"POLICYBOT_DATABASE_URL": self.url}

    @property
    def where(self) -> str:
        """The database as one string another process can open (tests.pg.server.open_where)."""
        return self.url or str(self.path)

    def open(self, **kw):
        """A new store on this test's database (each call is another connection, like another replica)."""
        if self.kind == "sqlite":
            from bot.storage import SQLiteStore
            store = SQLiteStore(self.path, **kw)
        else:
            from bot.storage.postgres import PostgresStore
            store = PostgresStore(self.url, **kw)
        self.stores.append(store)
        return store

    def sql(self, query: str, params=()) -> list[tuple]:
        """Run SQL written with '?' placeholders straight on the database (for tests that age rows or count)."""
        if self.kind == "sqlite":
            import sqlite3
            conn = sqlite3.connect(self.path)
            try:
                with conn:
                    return conn.execute(query, list(params)).fetchall()
            finally:
                conn.close()
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(re.sub(r"\?", "%s", query.replace("%", "%%")), list(params))
            return cur.fetchall() if cur.description else []

    def count(self, table: str) -> int:
        return self.sql(f"SELECT count(*) FROM {table}")[0][0]

    def close(self) -> None:
        for store in self.stores:
            try:
                store.close()
            except Exception:
                pass
        if self.kind == "postgres":
            self.server.drop(self.dbname)


def open_where(where: str, **kw):
    """A store on the database `where` names: a postgresql:// URL, else an SQLite file."""
    if str(where).startswith(("postgresql://", "postgres://")):
        from bot.storage.postgres import PostgresStore
        return PostgresStore(str(where), **kw)
    from bot.storage import SQLiteStore
    return SQLiteStore(where, **kw)
