"""The Teams app end to end, offline: our aiohttp server and botbuilder's CloudAdapter, a fake connector."""
from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import ClientSession, web

from bot.app import build_core
from bot.config import ConfigError, TeamsSettings
from bot.server import build_web_app
from bot.storage import SQLiteStore
from bot.teams.bot import TeamsSurface, teams_surface_from_env
from bot.teams.cards import card_text

from .conftest import ROOT
from .teams_fake import FakeConnector, activity

NOW = dt.datetime(2026, 11, 21, 14, 30, tzinfo=ZoneInfo("Europe/London"))


COMMS = "19:comms@thread.tacv2"
SETTINGS = TeamsSettings(register_from=(COMMS,), admins=("29:admin",))


def shown(act: dict) -> str:
    """What a Teams user sees of an activity: its text and the text of its cards."""
    return "\n".join([act.get("text") or ""] + [card_text(a["content"]) for a in act.get("attachments") or []])


class Rig:
    """Our server with botbuilder, a fake connector. `where` is a test's `storage` (either backend) or an
    SQLite file; restart() opens the same database again."""

    def __init__(self, where, app_id: str = "", password: str = "", settings: TeamsSettings = SETTINGS, tenant: str = ""):
        self.open_store = where.open if not isinstance(where, Path) else (lambda: SQLiteStore(where))
        self.app_id, self.password, self.settings, self.tenant = app_id, password, settings, tenant

    async def __aenter__(self):
        self.fake = await FakeConnector().start()
        await self.restart()
        self.http = ClientSession()
        return self

    async def restart(self):
        """New core, new bot objects, same database: what a process restart leaves behind."""
        if getattr(self, "runner", None):
            await self.runner.cleanup()
        self.core = build_core(ROOT / "app.yaml", store=self.open_store(), clock=lambda: NOW)
        self.teams = TeamsSurface(self.core, app_id=self.app_id, app_password=self.password, settings=self.settings,
                                  tenant_id=self.tenant)
        self.runner = web.AppRunner(build_web_app(self.core, teams=self.teams))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/api/messages"

    async def __aexit__(self, *exc):
        await self.http.close()
        await self.runner.cleanup()
        await self.fake.stop()
        if exc[0] is None:
            assert self.fake.rejected == [], "Teams would have refused these messages as too big"

    async def send(self, text: str = "", headers: dict | None = None, **kw):
        body = activity(self.fake.url, text, **kw)
        async with self.http.post(self.url, json=body, headers=headers or {}) as resp:
            return resp.status

    def cards(self, conv: str | None = None) -> list[str]:
        out = []
        for verb, _, act in self.fake.outgoing(conv):
            for att in act.get("attachments") or []:
                out.append(card_text(att["content"]))
            if act.get("text"):
                out.append(act["text"])
        return out


async def test_dm_check_and_question_as_cards(tmp_path):
    async with Rig(tmp_path / "t.db") as rig:
        assert await rig.send("can I post this? the lad in bay 3 thinks the telly talks to him lol") == 201
        check = rig.cards()[-1]
        assert "Don't post this" in check and "Could identify a patient" in check and "bsmhft 3.1" in check
        assert "[Ask comms to review]" in check and "[Why?]" in check
        await rig.send("can I post this? Monday mood: **schizo** [click](http://x.example) <at>Everyone</at>")
        raw = json.dumps(rig.fake.outgoing()[-1][2]["attachments"][0]["content"])
        assert "\\\\*\\\\*frazzled\\\\*\\\\*" in raw and "\\\\[click\\\\]" in raw and "\\\\<at\\\\>" in raw  # escaped, shown as typed
        await rig.send("an ex-patient added me on Facebook, what do I do?")
        answer = rig.cards()[-1]
        assert "3.2.1.unsolicited" in answer and "Do not engage" in answer and "[Helpful]" in answer


async def test_channel_answers_only_when_mentioned_and_checks_privately(tmp_path):
    async with Rig(tmp_path / "t.db") as rig:
        chan = "19:general@thread.tacv2"
        await rig.send("disclaimer wording?", conv=chan, kind="channel")
        assert rig.fake.calls == []
        await rig.send("disclaimer wording?", conv=chan, kind="channel", mention=True)
        assert "disclaimer" in rig.cards(chan)[-1].lower()
        await rig.send("can I post this? My patient on Ward 4 is driving me mad", conv=chan, kind="channel", mention=True)
        created = [c for c in rig.fake.calls if c[0] == "create"]
        assert created and created[0][2]["members"][0]["id"] == "29:nurse"
        private = rig.cards(created[0][1])
        assert private and "Don't post this" in private[-1]
        assert not any("Ward 4" in c for c in rig.cards(chan))


async def test_card_flow_with_validation_error_risk_and_restart(storage):
    async with Rig(storage) as rig:
        await rig.send("report contact")
        first = rig.fake.outgoing()[-1]
        card_id = "r-card"
        assert "Step 1 of 5" in rig.cards()[-1]
        submit = lambda step, answer: rig.send(value={"action": "report_submit", "step": step, "answer": answer},
                                               reply_to=card_id)
        await submit("platform", "instagram")
        await submit("contact_kind", "comment")
        await rig.restart()  # the process restarts mid-flow
        await submit("from_whom", "family_or_carer")
        await submit("occurred_at", "31/02/2026 10:00")
        updated = [a for v, _, a in rig.fake.calls if v == "update"]
        assert "isn't a real date" in card_text(updated[-1]["attachments"][0]["content"])
        await submit("occurred_at", "yesterday 9pm")
        await submit("description", "Says she will kill herself if I don't reply")
        texts = rig.cards()
        assert any("116 123" in t for t in texts[-2:])  # crisis lines at once, as their own message
        for step, answer in (("screenshot", "yes"), ("line_manager", "Priya Shah"), ("notify_manager", "no"),
                             ("redirect", "used"), ("privacy", "later")):
            await submit(step, answer)
        assert "Your report is INC-2026-0001" in rig.cards()[-1]
        inc = rig.core.store.get_incident("INC-2026-0001")
        assert inc.status == "completed" and inc.surface == "teams" and inc.fields["platform"] == "instagram"
        assert inc.risk_flags == ["suicide"] and len([a for a in inc.answers if a.step == "occurred_at"]) == 1


async def test_comms_channel_registration_and_proactive_escalation_with_acknowledge(storage):
    async with Rig(storage) as rig:
        chan = "19:comms@thread.tacv2"
        await rig.send("register comms channel", conv=chan + ";messageid=171", kind="channel", mention=True,
                       user="29:alex", name="Alex")
        assert "escalations for the comms team" in rig.cards(chan + ";messageid=171")[-1]
        await rig.send("report contact a journalist messaged me asking about the ward")
        # A new post in the channel (not in the registration thread), through botbuilder's proactive path.
        posted = await rig.fake.wait_for(lambda c: c[0] in ("send", "reply") and c[1] == chan)
        assert "For the comms team" in card_text(posted[2]["attachments"][0]["content"])
        esc = rig.core.store.escalations()[0]
        assert esc.status == "sent" and esc.message_ref.startswith("ref:comms|") and esc.message_ref.split("|")[1]
        await rig.send(value={"action": "esc_ack", "value": str(esc.id)}, conv=chan, kind="channel",
                       user="29:alex", name="Alex")
        update = await rig.fake.wait_for(lambda c: c[0] == "update" and c[1] == chan)
        assert "Acknowledged by Alex" in card_text(update[2]["attachments"][0]["content"])
        told = await rig.fake.wait_for(lambda c: c[1] == "a:dm-1" and "being looked at" in shown(c[2]))
        assert "Alex" in shown(told[2])
        stored = rig.core.store.get_escalation(esc.id)
        assert stored.acknowledged_by == "Alex" and stored.acknowledged_by_id == "teams:29:alex"


async def test_ask_comms_asks_to_confirm_before_sending_the_draft(storage):
    async with Rig(storage) as rig:
        data = {"action": "ask_comms", "value": "draft|My patient on Ward 9", "confirm": "Send this draft?"}
        await rig.send(value=data)
        assert "[Yes, send it]" in rig.cards()[-1]
        assert rig.core.store.escalations() == []
        await rig.send(value={**data, "confirmed": True})
        assert [e.kind for e in rig.core.store.escalations()] == ["review"]


async def test_auth_enabled_without_authorization_header_is_401(tmp_path):
    async with Rig(tmp_path / "t.db", app_id="00000000-app", password="secret", tenant="tenant-1") as rig:
        assert await rig.send("hello") == 401
        assert await rig.send("hello", headers={"Authorization": "Bearer not-a-jwt"}) == 401
        assert rig.fake.calls == []


def test_refuses_to_run_unauthenticated_off_loopback(tmp_path):
    core = build_core(ROOT / "app.yaml", store=SQLiteStore(tmp_path / "x.db"))
    with pytest.raises(ConfigError, match=r"MicrosoftAppId is not set, and --host 0\.0\.0\.0 is not loopback"):
        teams_surface_from_env(core, {}, "0.0.0.0")
    with pytest.raises(ConfigError, match="MicrosoftAppPassword is not set"):
        teams_surface_from_env(core, {"MicrosoftAppId": "abc"}, "0.0.0.0")
    assert teams_surface_from_env(core, {}, "127.0.0.1").app_id == ""


async def test_bot_storage_round_trips_plain_data_and_checks_etags(storage):
    from bot.teams.storage import SQLiteBotStorage
    replica = SQLiteBotStorage(storage.open())
    storage = SQLiteBotStorage(storage.open())
    await storage.write({"k": {"a": 1}})
    got = (await storage.read(["k"]))["k"]
    assert got["a"] == 1 and got["e_tag"] == "1"
    await storage.write({"k": {"a": 2, "e_tag": got["e_tag"]}})
    with pytest.raises(KeyError):
        await storage.write({"k": {"a": 3, "e_tag": got["e_tag"]}})  # stale etag
    with pytest.raises(KeyError):  # another replica's stale write is refused too
        await replica.write({"k": {"a": 4, "e_tag": got["e_tag"]}})
    assert (await replica.read(["k"]))["k"] == {"a": 2, "e_tag": "2"}
    with pytest.raises(TypeError):
        await storage.write({"k": {"a": object()}})
    await storage.delete(["k"])
    assert await storage.read(["k"]) == {}


def test_teams_package_has_manifest_with_app_id_and_icons(tmp_path):
    import struct
    import zipfile

    from bot.cli import main
    out = tmp_path / "app.zip"
    assert main(["teams-package", "--app-id", "12345678-1234-1234-1234-123456789abc", "--domain",
                 "policybot.example.nhs.uk", "--out", str(out)], stdout=io.StringIO()) == 0
    with zipfile.ZipFile(out) as z:
        manifest = json.loads(z.read("manifest.json"))
        assert manifest["id"] == manifest["bots"][0]["botId"] == "12345678-1234-1234-1234-123456789abc"
        sizes = {name: struct.unpack(">II", z.read(name)[16:24]) for name in ("color.png", "outline.png")}
    assert sizes == {"color.png": (192, 192), "outline.png": (32, 32)}
    assert main(["teams-package", "--app-id", "not-a-guid", "--domain", "policybot.example.nhs.uk", "--out", str(out)],
                stdout=io.StringIO()) == 2
    assert main(["teams-package", "--app-id", "12345678-1234-1234-1234-123456789abc", "--domain", "not a host",
                 "--out", str(out)], stdout=io.StringIO()) == 2
