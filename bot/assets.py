"""Files that ship with policybot: the demo app.yaml, the Slack manifest and the Teams app folder.

In a source checkout they live at the top of the repository, where the README points. A
built wheel carries the same files inside the package, in bot/_assets (pyproject.toml maps
that package to the repository root and lists the files as package data), so a normal
`pip install .` works from any directory.
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGED = Path(__file__).resolve().parent / "_assets"
SOURCE_ROOT = Path(__file__).resolve().parent.parent  # the repository, or site-packages once installed


def asset(name: str) -> Path:
    """A shipped file or folder, from the installed package if there is one, else the checkout."""
    packaged = PACKAGED / name
    return packaged if packaged.exists() else SOURCE_ROOT / name


def installed() -> bool:
    """True when running from a built wheel rather than a source checkout."""
    return PACKAGED.is_dir()


def user_data_dir() -> Path:
    """Where an installed policybot keeps its database when the shipped app.yaml is used
    (site-packages is no place for patient-sensitive data, and may not be writable)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "policybot"
