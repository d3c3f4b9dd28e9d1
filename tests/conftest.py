"""Shared fixtures: the shipped configuration and knowledge, loaded once per test session."""
from __future__ import annotations

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
    import os
    path = tmp_path_factory.mktemp("db") / "policybot.db"
    os.environ["POLICYBOT_DATABASE"] = str(path)
    yield path
    os.environ.pop("POLICYBOT_DATABASE", None)


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
