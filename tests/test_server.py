"""The server's operations side: liveness and readiness, $PORT, JSON logs with no user text in them."""
from __future__ import annotations

import asyncio
import io
import json
import logging

from aiohttp import web

from bot import logs
from bot.app import build_core
from bot.cli import build_parser
from bot.config import SlackSettings
from bot.server import build_web_app, start_socket_mode
from bot.slack.app import SlackSurface
from bot.storage import SQLiteStore

from .conftest import ROOT
from .slack_fake import FakeSlack
from .test_slack import NOW, Rig, dm
from .test_teams import Rig as TeamsRig


async def _get(rig, path):
    async with rig.http.get(rig.url + path) as resp:
        return resp.status, await resp.json()


async def test_healthz_is_liveness_and_readyz_checks_the_database_and_packs(tmp_path):
    async with Rig(tmp_path) as rig:
        assert await _get(rig, "/healthz") == (200, {"ok": True, "slack": True, "teams": False})
        status, body = await _get(rig, "/readyz")
        assert status == 200 and body == {"ready": True, "checks": {"database": "ok", "packs": "ok"}}
        rig.core.store.close()  # the database goes away
        status, body = await _get(rig, "/readyz")
        assert status == 503 and body["ready"] is False and body["checks"]["database"].startswith("unreachable")
        assert (await _get(rig, "/healthz"))[0] == 200  # still alive: a restart would not bring the database back


async def test_readyz_reports_whether_socket_mode_is_connected(tmp_path):
    fake = await FakeSlack().start()
    core = build_core(ROOT / "app.yaml", store=SQLiteStore(tmp_path / "s.db"), clock=lambda: NOW)
    slack = SlackSurface(core, SlackSettings(mode="socket", comms_channel="CCOMMS"), token="xoxb-test",
                         base_url=fake.url + "/api/")
    state = {"handler": None}
    runner = web.AppRunner(build_web_app(core, slack, socket=lambda: state["handler"]))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/readyz"
    from aiohttp import ClientSession
    try:
        async with ClientSession() as http:
            async def ready():
                async with http.get(url) as resp:
                    return resp.status, (await resp.json())["checks"]["slack_socket_mode"]
            assert await ready() == (503, "not connected")  # before it has connected
            state["handler"] = await start_socket_mode(slack, "xapp-test")
            for _ in range(200):
                if await ready() == (200, "ok"):
                    break
                await asyncio.sleep(0.02)
            assert await ready() == (200, "ok")
            await state["handler"].close_async()
            assert await ready() == (503, "not connected")
    finally:
        await runner.cleanup()
        await slack.close()
        await fake.stop()


def test_serve_listens_on_port_from_the_environment(monkeypatch):
    monkeypatch.setenv("PORT", "8181")
    assert build_parser().parse_args(["serve"]).port == 8181
    assert build_parser().parse_args(["serve", "--port", "9000"]).port == 9000  # the flag wins
    monkeypatch.delenv("PORT")
    assert build_parser().parse_args(["serve"]).port == 3000


CANARIES = ("Canary-draft-7731 the lad in bay 3", "Canary-question-5519 can I friend a patient",
            "Canary-report-2208 she says she will end it")


async def test_json_logs_are_one_object_a_line_and_carry_no_user_text(tmp_path):
    stream = io.StringIO()
    before = logging.getLogger().handlers[:], logging.getLogger().level
    logs.configure("json", stream=stream)
    try:
        async with Rig(tmp_path) as rig:
            await rig.event(dm("can I post this? " + CANARIES[0], ts="1.1"), "EvLog1")
            await rig.event(dm(CANARIES[1] + "?", ts="1.2"), "EvLog2")
            rig.fake.fail_next["chat.postEphemeral"] = [(500, {})]  # a failure path logs too
            await rig.event({"type": "app_mention", "channel": "C1", "user": "U1", "ts": "1.3",
                             "text": "<@UBOT> can I post this? " + CANARIES[0]}, "EvLog3")
            for _ in range(300):
                if len(rig.fake.of("chat.postMessage")) >= 3:
                    break
                await asyncio.sleep(0.01)
            await rig.slack.drain()
        async with TeamsRig(tmp_path / "t.db") as teams:
            await teams.send("can I post this? " + CANARIES[0])
            await teams.send(CANARIES[1] + "?")
            await teams.send("report contact " + CANARIES[2])
    finally:
        logging.getLogger().handlers[:], level = before
        logging.getLogger().setLevel(level)
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    assert lines, "the server logged nothing at all"
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["logger"] == "aiohttp.access" for r in records)
    assert any(r["logger"] == "policybot.slack" for r in records)  # the failed ephemeral, by error type only
    for line in lines:
        for canary in CANARIES:
            assert canary.split()[0] not in line, line
