"""The Slack and Teams manifests validate against the platforms' own published schemas, and the
Slack app asks for exactly the scopes its code uses.

Schema copies and where they came from: tests/data/schemas/README.md.
"""
from __future__ import annotations

import json
import re
import zipfile

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4, DRAFT7

from bot.teams.package import build_package

from .conftest import ROOT

SCHEMAS = ROOT / "tests" / "data" / "schemas"
SLACK_SCHEMA_URL = "https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/manifest.schema.{}.json"
APP_ID = "12345678-1234-1234-1234-123456789abc"

# What each Slack Web API method needs (Slack's method reference, bot tokens). Where a method works
# on several kinds of conversation, the scopes are those for the kinds we use it on: public or
# private comms/safeguarding channels, and DMs with the bot. Methods needing no scope map to ().
METHOD_SCOPES = {
    "auth.test": (), "views.open": (), "views.update": (), "views.push": (), "views.publish": (),
    "chat.postMessage": ("chat:write",), "chat.postEphemeral": ("chat:write",), "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    "conversations.open": ("im:write",),
    "conversations.history": ("channels:history", "groups:history", "im:history"),
    "conversations.replies": ("channels:history", "groups:history", "im:history"),
    "conversations.members": ("channels:read", "groups:read"),
    "conversations.info": ("channels:read", "groups:read"),
    "usergroups.users.list": ("usergroups:read",),
    "users.info": ("users:read",),
}
EVENT_SCOPES = {"app_mention": ("app_mentions:read",), "message.im": ("im:history",), "app_home_opened": ()}
CLIENT_CALL = re.compile(r"\bclient\.([a-z]+)_([A-Za-z_]+)\(")


def slack_manifest() -> dict:
    return yaml.safe_load((ROOT / "slack" / "manifest.yaml").read_text(encoding="utf-8"))


def test_slack_manifest_validates_against_slacks_schema():
    top = json.loads((SCHEMAS / "slack-manifest.schema.json").read_text())
    registry = Registry().with_resources(
        (SLACK_SCHEMA_URL.format(v), Resource.from_contents(json.loads(
            (SCHEMAS / f"slack-manifest-{v}.schema.json").read_text()), default_specification=DRAFT7))
        for v in ("1.0.0", "2.0.0"))
    validator = jsonschema.Draft7Validator(top, registry=registry)
    errors = sorted(validator.iter_errors(slack_manifest()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_the_slack_schema_copy_catches_what_slack_rejected():
    """The 33-character shortcut name that made 'Create from an app manifest' fail."""
    v1 = json.loads((SCHEMAS / "slack-manifest-1.0.0.schema.json").read_text())
    bad = slack_manifest()
    bad["features"]["shortcuts"][0]["name"] = "Check against social media policy"
    errors = list(jsonschema.Draft7Validator(v1).iter_errors(bad))
    assert any("is too long" in e.message and "shortcuts" in e.path for e in errors)
    assert all(len(s["name"]) <= 24 for s in slack_manifest()["features"]["shortcuts"])


def _methods_called() -> set[str]:
    """Every Slack Web API method the app's code calls through a client (slack_sdk names them
    chat_postMessage for chat.postMessage, usergroups_users_list for usergroups.users.list)."""
    methods = set()
    for path in (ROOT / "bot").rglob("*.py"):
        for family, rest in CLIENT_CALL.findall(path.read_text(encoding="utf-8")):
            if family in ("chat", "views", "conversations", "usergroups", "users", "auth", "reactions", "files"):
                methods.add(f"{family}.{rest.replace('_', '.')}")
    return methods | {"auth.test"}  # bolt calls auth.test itself


def test_slack_scopes_are_exactly_what_the_code_uses():
    manifest = slack_manifest()
    called = _methods_called()
    unknown = called - set(METHOD_SCOPES)
    assert not unknown, f"add these methods' scopes to METHOD_SCOPES (from Slack's reference): {unknown}"
    needed = {scope for m in called for scope in METHOD_SCOPES[m]}
    needed |= {scope for e in manifest["settings"]["event_subscriptions"]["bot_events"] for scope in EVENT_SCOPES[e]}
    if manifest["features"].get("slash_commands") or manifest["features"].get("shortcuts"):
        needed.add("commands")
    granted = set(manifest["oauth_config"]["scopes"]["bot"])
    assert granted - needed == set(), "granted but never used (least privilege)"
    assert needed - granted == set(), "used but not granted"


def _teams_schema(manifest: dict) -> dict:
    version = re.search(r"/teams/v([\d.]+)/MicrosoftTeams\.schema\.json$", manifest["$schema"]).group(1)
    assert manifest["manifestVersion"] == version
    return json.loads((SCHEMAS / f"teams-manifest-v{version}.schema.json").read_text())


def test_teams_manifest_validates_against_the_schema_it_names(tmp_path):
    out = build_package(APP_ID, tmp_path / "app.zip", domain="policybot.example.nhs.uk")
    with zipfile.ZipFile(out) as z:
        manifest = json.loads(z.read("manifest.json"))
    schema = _teams_schema(manifest)
    assert schema["properties"]["manifestVersion"]["const"] == manifest["manifestVersion"]  # draft-04 has no const
    validator = jsonschema.Draft4Validator(schema, registry=Registry().with_resource(
        "urn:teams", Resource.from_contents(schema, default_specification=DRAFT4)))
    errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_teams_manifest_follows_current_conventions(tmp_path):
    out = build_package(APP_ID, tmp_path / "app.zip", domain="policybot.example.nhs.uk")
    with zipfile.ZipFile(out) as z:
        manifest = json.loads(z.read("manifest.json"))
    assert tuple(map(int, manifest["manifestVersion"].split("."))) >= (1, 22)
    assert manifest["validDomains"] == ["policybot.example.nhs.uk"]
    bot = manifest["bots"][0]
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    command = manifest["composeExtensions"][0]["commands"][0]
    assert manifest["composeExtensions"][0]["botId"] == APP_ID
    assert (command["id"], command["type"], command["title"], command["context"], command["fetchTask"]) == \
        ("checkMessage", "action", "Check against policy", ["message"], True)
    assert "${" not in json.dumps(manifest)  # every placeholder filled
