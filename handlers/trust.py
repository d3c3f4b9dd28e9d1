"""The deployment's trust profile: who to contact, crisis lines, approved channels, disclaimer.

Loaded from app.yaml by bot.config; handlers read it to fill in the trust's own details.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Contact:
    name: str
    email: str = ""
    contact: str = ""

    def line(self) -> str:
        how = self.email or self.contact
        return f"{self.name} ({how})" if how else self.name


@dataclass(frozen=True)
class CrisisLine:
    name: str
    number: str
    note: str = ""


@dataclass(frozen=True)
class TrustProfile:
    name: str
    short_name: str
    comms: Contact
    safeguarding: Contact
    foi: Contact | None
    crisis_lines: tuple[CrisisLine, ...]
    approved_channels: tuple[Contact, ...]
    disclaimer: str
    timezone: str = "Europe/London"
