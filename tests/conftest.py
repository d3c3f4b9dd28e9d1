"""Shared fixtures: the shipped configuration and knowledge, loaded once per test session, and the stores.

`storage` runs a test once on SQLite and once on PostgreSQL (a fresh database each time, on a
throwaway cluster this session starts), so the two stores are held to one contract. Locally the
PostgreSQL runs skip with one line saying why when no server can be started; under CI=true they
fail instead.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot.app import build_core
from bot.config import load_config

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def private_database(tmp_path_factory):
    """Never touch the developer's own database: every test run gets a fresh one."""
    path = tmp_path_factory.mktemp("db") / "policybot.db"
    saved = os.environ.pop("POLICYBOT_DATABASE_URL", None)
    os.environ["POLICYBOT_DATABASE"] = str(path)
    yield path
    os.environ.pop("POLICYBOT_DATABASE", None)
    if saved is not None:
        os.environ["POLICYBOT_DATABASE_URL"] = saved


@pytest.fixture(scope="session")
def core(private_database):
    return build_core(ROOT / "app.yaml")


@pytest.fixture(scope="session")
def index(core):
    return core.kb.index


@pytest.fixture
def packs_copy(tmp_path):
    """A writable copy of the knowledge folder, for tests that break a pack on purpose."""
    dst = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", dst, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return dst


@pytest.fixture
def config():
    return load_config(ROOT / "app.yaml")


# --- the stores ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server: $POLICYBOT_TEST_DATABASE_URL (a role that may create databases), or a
    throwaway cluster in a temp folder, stopped at the end of the session."""
    from .pg.cluster import ClusterUnavailable, start_cluster
    from .pg.server import PgServer
    if os.environ.get("POLICYBOT_TEST_DATABASE_URL"):
        server = PgServer(os.environ["POLICYBOT_TEST_DATABASE_URL"])
    else:
        try:
            cluster = start_cluster()
        except ClusterUnavailable as exc:
            if os.environ.get("CI") == "true":
                pytest.fail(f"PostgreSQL is required under CI=true: {exc}", pytrace=False)
            pytest.skip(f"PostgreSQL tests skipped: {exc}")
        try:
            server = PgServer(cluster.url, cluster)
        except BaseException:
            cluster.destroy()
            raise
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage(request, tmp_path):
    """One backend for this test run: `.open()` gives a store (several are several replicas on one
    database), `.env` points a subprocess at the same database, `.sql()` reads or pokes it directly."""
    from .pg.server import Storage
    server = request.getfixturevalue("postgres_server") if request.param == "postgres" else None
    backend = Storage(request.param, tmp_path, server)
    yield backend
    backend.close()


def pytest_terminal_summary(terminalreporter):
    """How many hostile inputs the property-based tests tried (tests/fuzz.py); any crash fails its test."""
    from .fuzz import TALLY
    if TALLY:
        each = ", ".join(f"{name} {n}" for name, n in sorted(TALLY.items()))
        terminalreporter.write_line(f"fuzz: {sum(TALLY.values())} hostile inputs tried ({each})")
