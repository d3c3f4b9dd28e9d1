"""`policybot teams-package`: the Teams app zip for sideloading (manifest with your bot's app id, icons)."""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from bot.assets import asset

TEAMS_DIR = asset("teams")
APP_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def build_package(app_id: str, out: Path, source: Path = TEAMS_DIR) -> Path:
    if not APP_ID.match(app_id or ""):
        raise ValueError(f"--app-id must be the bot's Microsoft App ID (a GUID), got {app_id!r}")
    manifest = (source / "manifest.json").read_text(encoding="utf-8").replace("${MicrosoftAppId}", app_id)
    json.loads(manifest)  # still valid JSON after substitution
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", manifest)
        for icon in ("color.png", "outline.png"):
            z.write(source / icon, icon)
    return out
