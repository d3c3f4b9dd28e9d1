"""Shared fixtures: the shipped configuration and knowledge, loaded once per test session."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.app import build_core
from bot.config import load_config

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def core():
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
