"""A fake Slack for tests: the Web API and a Socket Mode websocket on 127.0.0.1, recording every call.

Also helpers that sign requests the way Slack does, so tests exercise the real
request verification in slack-bolt.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.parse

from aiohttp import ClientSession, WSMsgType, web
from slack_sdk.signature import SignatureVerifier

SIGNING_SECRET = "test-signing-secret"


class FakeSlack:
    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.fail_next: dict[str, list[tuple[int, dict]]] = {}  # method -> [(status, headers)] to return first
        self._ts = itertools.count(1)
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: list[dict] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> "FakeSlack":
        app = web.Application()
        app.router.add_post("/api/{method}", self.api)
        app.router.add_get("/socket", self.socket)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        for ws in self.sockets:
            await ws.close()
        await self.runner.cleanup()

    # -- Web API -------------------------------------------------------------

    async def api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post())
        for key in ("blocks", "view", "attachments"):
            if isinstance(params.get(key), str):
                try:
                    params[key] = json.loads(params[key])
                except ValueError:
                    pass
        self.calls.append((method, params))
        pending = self.fail_next.get(method)
        if pending:
            status, headers = pending.pop(0)
            return web.json_response({"ok": False, "error": "ratelimited"}, status=status, headers=headers)
        return web.json_response(self.answer(method, params))

    def answer(self, method: str, params: dict) -> dict:
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        if method == "auth.test":
            return {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1", "user": "policybot"}
        if method == "chat.postMessage":
            channel = params.get("channel", "")
            return {"ok": True, "channel": "D" + channel[1:] if channel.startswith("U") else channel, "ts": ts}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method in ("views.open", "views.update", "views.publish"):
            return {"ok": True, "view": {"id": "V1", **(params.get("view") or {})}}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.url.replace("http", "ws") + "/socket"}
        return {"ok": True}

    def of(self, method: str) -> list[dict]:
        return [p for m, p in self.calls if m == method]

    async def wait_for(self, method: str, where=lambda p: True, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for params in self.of(method):
                if where(params):
                    return params
            await asyncio.sleep(0.01)
        raise AssertionError(f"no {method} call matched within {timeout}s; calls: {[m for m, _ in self.calls]}")

    # -- Socket Mode ---------------------------------------------------------

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}})
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self.socket_acks.append(json.loads(msg.data))
        return ws

    async def push(self, envelope: dict) -> None:
        await self.sockets[-1].send_json(envelope)


def sign(body: str, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)}


def event_body(event: dict, event_id: str) -> str:
    return json.dumps({"token": "t", "team_id": "T1", "api_app_id": "A1", "type": "event_callback",
                       "event_id": event_id, "event_time": int(time.time()), "event": event,
                       "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}]})


def payload_body(payload: dict) -> str:
    payload = {"team": {"id": "T1"}, "api_app_id": "A1", "token": "t", **payload}
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


async def post(session: ClientSession, url: str, body: str, content_type: str, headers: dict | None = None,
               signed: bool = True):
    hdrs = {"Content-Type": content_type, **(sign(body) if signed else {}), **(headers or {})}
    async with session.post(url, data=body.encode(), headers=hdrs) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if text.startswith("{") else text)
