"""`policybot teams-package`: the Teams app zip for sideloading or for your admin to approve
(the manifest with your bot's app id and server's domain, and the icons)."""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from bot.assets import asset

TEAMS_DIR = asset("teams")
APP_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def build_package(app_id: str, out: Path, source: Path = TEAMS_DIR, domain: str = "") -> Path:
    """domain: the server's public host name (where /api/messages is), listed in validDomains."""
    if not APP_ID.match(app_id or ""):
        raise ValueError(f"--app-id must be the bot's Microsoft App ID (a GUID), got {app_id!r}")
    domain = (domain or "").strip().lower().removeprefix("https://").rstrip("/")
    if not DOMAIN.match(domain):
        raise ValueError(f"--domain must be your server's public host name, e.g. policybot.example.nhs.uk, got {domain!r}")
    manifest = (source / "manifest.json").read_text(encoding="utf-8")
    manifest = manifest.replace("${MicrosoftAppId}", app_id).replace("${BotDomain}", domain)
    json.loads(manifest)  # still valid JSON after substitution
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", manifest)
        for icon in ("color.png", "outline.png"):
            z.write(source / icon, icon)
    return out
