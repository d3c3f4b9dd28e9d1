"""A fake Bot Framework connector (the serviceUrl Teams gives a bot) on 127.0.0.1, recording every call.

Like Teams it refuses a message over 28 KB (413), counted as UTF-16, the strictest reading
of the limit, and records each refusal in `rejected`.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time

from aiohttp import web

BOT = {"id": "28:policybot", "name": "policybot"}
MAX_MESSAGE_BYTES = 28 * 1024


def too_big(activity: dict) -> bool:
    return len(json.dumps(activity, ensure_ascii=False).encode("utf-16-le")) > MAX_MESSAGE_BYTES


class FakeConnector:
    def __init__(self):
        self.calls: list[tuple[str, str, dict]] = []  # (verb, conversation id, activity or params)
        self.rejected: list[tuple[str, str, int]] = []  # (verb, conversation id, size) Teams would refuse
        self._ids = itertools.count(1)
        self.url = ""

    async def start(self) -> "FakeConnector":
        app = web.Application()
        app.router.add_post("/v3/conversations", self.create)
        app.router.add_post("/v3/conversations/{conv}/activities", self.send)
        app.router.add_post("/v3/conversations/{conv}/activities/{activity}", self.reply)
        app.router.add_put("/v3/conversations/{conv}/activities/{activity}", self.update)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/"
        return self

    async def stop(self):
        await self.runner.cleanup()

    async def create(self, request):
        body = await request.json()
        conv = f"a:private-{next(self._ids)}"
        self.calls.append(("create", conv, body))
        return web.json_response({"id": conv})

    async def _record(self, verb: str, request):
        body = await request.json()
        self.calls.append((verb, request.match_info["conv"], body))
        if too_big(body):
            size = len(json.dumps(body, ensure_ascii=False).encode("utf-16-le"))
            self.rejected.append((verb, request.match_info["conv"], size))
            return web.json_response({"error": {"code": "MessageSizeTooBig", "message": "Message size too big"}},
                                     status=413)
        return None

    async def send(self, request):
        return await self._record("send", request) or web.json_response({"id": f"s-{next(self._ids)}"})

    async def reply(self, request):
        return await self._record("reply", request) or web.json_response({"id": f"r-{next(self._ids)}"})

    async def update(self, request):
        return await self._record("update", request) or web.json_response({"id": request.match_info["activity"]})

    def outgoing(self, conv: str | None = None) -> list[tuple[str, str, dict]]:
        return [c for c in self.calls if c[0] in ("send", "reply", "update") and (conv is None or c[1] == conv)]

    async def wait_for(self, where, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for call in self.calls:
                if where(call):
                    return call
            await asyncio.sleep(0.01)
        raise AssertionError(f"no matching connector call; calls: {[(v, c) for v, c, _ in self.calls]}")


def activity(service_url: str, text: str = "", *, conv: str = "a:dm-1", kind: str = "personal", user: str = "29:nurse",
             name: str = "Nurse One", value: dict | None = None, reply_to: str | None = None, mention: bool = False,
             activity_id: str | None = None, channel_data: dict | None = None) -> dict:
    act = {"type": "message", "id": activity_id or f"act-{time.monotonic_ns()}", "channelId": "msteams",
           "serviceUrl": service_url, "timestamp": "2026-11-21T14:30:00Z", "locale": "en-GB",
           "from": {"id": user, "name": name, "aadObjectId": "aad-" + user},
           "conversation": {"id": conv, "conversationType": kind, "tenantId": "tenant-1"},
           "recipient": BOT, "text": text}
    if mention:
        act["text"] = f"<at>policybot</at> {text}"
        act["entities"] = [{"type": "mention", "mentioned": BOT, "text": "<at>policybot</at>"}]
    if value is not None:
        act["value"] = value
    if reply_to:
        act["replyToId"] = reply_to
    if channel_data is not None:
        act["channelData"] = channel_data
    return act
