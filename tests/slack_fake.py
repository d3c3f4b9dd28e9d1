"""A fake Slack for tests: the Web API, response_url webhooks and a Socket Mode websocket on
127.0.0.1, recording every call.

It keeps what the bot posted, per channel, the way Slack does: conversations.history (top-level
messages, newest first, metadata only with include_all_metadata, paged by cursor),
conversations.replies, chat.update, conversations.open for DMs, and who is in a channel
(conversations.members) or a user group (usergroups.users.list), set by the test in
`members` / `usergroups`. `on_post` runs after a post is stored and before Slack answers:
a test can kill the bot there, in the window between Slack accepting a post and the bot
recording it.

Like the real Slack it refuses messages and views that break Block Kit's documented limits
(`invalid_blocks`; see block_kit.py) and records each refusal in `rejected`, and it accepts
posts to a shortcut's response_url. Also helpers that sign requests the way Slack does, so
tests exercise the real request verification in slack-bolt.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.parse

from aiohttp import ClientSession, WSMsgType, web
from slack_sdk.signature import SignatureVerifier

from .block_kit import message_problems, view_problems

SIGNING_SECRET = "test-signing-secret"


class FakeSlack:
    def __init__(self):
        self.calls: list[tuple[str, dict]] = []
        self.fail_next: dict[str, list[tuple[int, dict]]] = {}  # method -> [(status, headers)] to return first
        self._ts = itertools.count(1)
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: list[dict] = []
        self.rejected: list[tuple[str, list[str]]] = []  # (method, what broke Slack's limits)
        self.runner: web.AppRunner | None = None
        self.url = ""
        self.history: dict[str, list[dict]] = {}    # channel id -> messages in the order they were posted
        self.members: dict[str, list[str]] = {}     # channel id -> member user ids
        self.usergroups: dict[str, list[str]] = {}  # user group id -> user ids
        self.page_size = 100                        # conversations.history/members pages at most this many
        self.on_post = None                         # async (params, message) -> None, after a post is stored

    async def start(self) -> "FakeSlack":
        app = web.Application()
        app.router.add_post("/api/{method}", self.api)
        app.router.add_get("/api/{method}", self.api)
        app.router.add_post("/response/{path:.*}", self.response_url)
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
        params = dict(request.query)  # slack_sdk sends some methods' arguments in the query string
        if request.method == "POST" and request.content_type == "application/json":
            params.update(await request.json())
        elif request.method == "POST":
            params.update(dict(await request.post()))
        for key in ("blocks", "view", "attachments", "metadata"):
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
        problems = self.problems(method, params)
        if problems:
            self.rejected.append((method, problems))
            return web.json_response({"ok": False, "error": "invalid_blocks", "errors": problems})
        answer = self.answer(method, params)
        if method == "chat.postMessage" and answer.get("ok") and self.on_post is not None:
            await self.on_post(params, answer["message"])
        return web.json_response(answer)

    @staticmethod
    def problems(method: str, params: dict) -> list[str]:
        if method in ("chat.postMessage", "chat.postEphemeral", "chat.update", "response_url"):
            return message_problems(params)
        if method.startswith("views."):
            return view_problems(params.get("view") or {})
        return []

    async def response_url(self, request: web.Request) -> web.Response:
        """A message shortcut's or command's response_url: Slack takes a JSON message body."""
        params = await request.json()
        self.calls.append(("response_url", params))
        problems = self.problems("response_url", params)
        if problems:
            self.rejected.append(("response_url", problems))
            return web.Response(status=400, text="invalid_blocks")
        return web.Response(text="ok")

    def answer(self, method: str, params: dict) -> dict:
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        if method == "auth.test":
            return {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1", "user": "policybot"}
        if method == "chat.postMessage":
            channel = self.dm(params.get("channel", ""))
            message = {"type": "message", "user": "UBOT", "bot_id": "BBOT", "ts": ts, "text": params.get("text", ""),
                       "blocks": params.get("blocks") or []}
            if params.get("thread_ts"):
                message["thread_ts"] = params["thread_ts"]
            if params.get("metadata"):
                message["metadata"] = params["metadata"]
            self.history.setdefault(channel, []).append(message)
            return {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "chat.update":
            found = self.message(params.get("channel", ""), params.get("ts", ""))
            if found is None:
                return {"ok": False, "error": "message_not_found"}
            found.update({k: params[k] for k in ("text", "blocks", "metadata") if params.get(k)})
            return {"ok": True, "channel": params["channel"], "ts": params["ts"]}
        if method == "conversations.history":
            return self.page([m for m in reversed(self.history.get(params.get("channel", ""), []))
                              if "thread_ts" not in m and float(m["ts"]) >= float(params.get("oldest") or 0)],
                             params, "messages", metadata=_truthy(params.get("include_all_metadata")))
        if method == "conversations.replies":
            thread = [m for m in self.history.get(params.get("channel", ""), [])
                      if m["ts"] == params.get("ts") or m.get("thread_ts") == params.get("ts")]
            if not thread:
                return {"ok": False, "error": "thread_not_found"}
            return self.page(thread, params, "messages", metadata=_truthy(params.get("include_all_metadata")))
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": self.dm(params.get("users", ""))}}
        if method == "conversations.members":
            if params.get("channel") not in self.members:
                return {"ok": False, "error": "channel_not_found"}
            return self.page(list(self.members[params["channel"]]), params, "members")
        if method == "usergroups.users.list":
            if params.get("usergroup") not in self.usergroups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": list(self.usergroups[params["usergroup"]])}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method in ("views.open", "views.update", "views.publish"):
            return {"ok": True, "view": {"id": "V1", **(params.get("view") or {})}}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.url.replace("http", "ws") + "/socket"}
        return {"ok": True}

    @staticmethod
    def dm(channel: str) -> str:
        """Posting to a user id lands in the bot's DM with them, a D... channel."""
        return "D" + channel[1:] if channel.startswith(("U", "W")) else channel

    def message(self, channel: str, ts: str) -> dict | None:
        return next((m for m in self.history.get(channel, []) if m["ts"] == ts), None)

    def page(self, items: list, params: dict, key: str, metadata: bool = True) -> dict:
        start = int(params.get("cursor") or 0)
        size = min(int(params.get("limit") or self.page_size), self.page_size)
        chunk = items[start:start + size]
        if key == "messages" and not metadata:
            chunk = [{k: v for k, v in m.items() if k != "metadata"} for m in chunk]
        more = start + size < len(items)
        return {"ok": True, key: chunk, "has_more": more,
                "response_metadata": {"next_cursor": str(start + size) if more else ""}}

    def posts(self, channel: str | None = None) -> list[dict]:
        """Every message the bot has posted (in one channel, or anywhere), in order."""
        return [m for ch, msgs in self.history.items() if channel in (None, ch) for m in msgs]

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


def _truthy(value) -> bool:
    return str(value).lower() in ("1", "true")


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
