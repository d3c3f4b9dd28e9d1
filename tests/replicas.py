"""Real `policybot serve` processes for tests: replicas on one database, talking to the fake Slack.

Each replica is its own process with its own bot token, so the fake Slack can tell which
replica made a call (`caller()` inside a fake hook). Starting one waits until it answers a
DM (the whole stack is warm, so later events race only each other).
"""
from __future__ import annotations

import asyncio
import contextvars
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import yaml
from aiohttp import ClientSession

from .slack_fake import SIGNING_SECRET, FakeSlack, event_body, payload_body, post

ROOT = Path(__file__).resolve().parent.parent
JSON, FORM = "application/json", "application/x-www-form-urlencoded"
_caller: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="")


def caller() -> str:
    """Inside a fake Slack hook: the name of the replica whose call this is."""
    return _caller.get()


class ReplicaFake(FakeSlack):
    """The fake Slack, noting which replica (by its token, xoxb-<name>) made each call. `before_call`
    (async, given the method) runs before a call is handled: a test can kill the caller mid-request."""

    before_call = None

    async def api(self, request):
        _caller.set(request.headers.get("Authorization", "").removeprefix("Bearer xoxb-"))
        if self.before_call is not None:
            await self.before_call(request.match_info["method"])
        return await super().api(request)

    def posts(self, channel: str) -> list[dict]:
        """Top-level messages stored in a channel (a DM is under D + the user id's tail)."""
        return [m for m in self.history.get(self.dm(channel), []) if "thread_ts" not in m]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(folder: Path, **escalations) -> Path:
    """The shipped app.yaml with test channels, Slack only, and the outbox timing given."""
    raw = yaml.safe_load((ROOT / "app.yaml").read_text())
    raw["checker"]["local_rules"] = str(ROOT / raw["checker"]["local_rules"])
    raw["slack"].update(comms_channel="CCOMMS", safeguarding_channel="CSAFE")
    raw["teams"] = {"enabled": False}
    raw["escalations"] = {**(raw.get("escalations") or {}), **escalations}
    path = folder / "app.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


class Replica:
    def __init__(self, name: str, config: Path, storage_env: dict, fake: ReplicaFake, folder: Path,
                 workers: int = 1):
        self.name, self.config, self.fake, self.workers = name, config, fake, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"replica-{name}.log"
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PG", "POLICYBOT_"))},
                    **storage_env, "SLACK_BOT_TOKEN": f"xoxb-{name}", "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                    "SLACK_API_URL": fake.url + "/api/", "PYTHONUNBUFFERED": "1"}
        self.proc: subprocess.Popen | None = None
        self.http: ClientSession | None = None

    def launch(self) -> "Replica":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "--config", str(self.config), "serve", "--port", str(self.port),
                 "--workers", str(self.workers)], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    async def ready(self, timeout: float = 90.0) -> "Replica":
        """Wait until it answers a DM end to end (with --workers, one worker at least)."""
        self.http = self.http or ClientSession()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"replica {self.name} exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                async with self.http.get(self.url + "/healthz") as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"replica {self.name} did not start:\n{self.logs()}")
            await asyncio.sleep(0.05)
        ts = f"{time.time():.6f}"
        await self.event(dm("help", ts=ts, user="UWARM"), f"EvWarm-{self.name}-{ts}")
        await self.fake.wait_for("chat.postMessage", lambda p: p.get("thread_ts") == ts, timeout=30)
        return self

    async def event(self, event: dict, event_id: str, headers=None):
        return await post(self.http, self.url + "/slack/events", event_body(event, event_id), JSON, headers)

    async def interact(self, payload: dict):
        return await post(self.http, self.url + "/slack/events", payload_body(payload), FORM)

    async def command(self, text: str = "", user: str = "U1"):
        body = urllib.parse.urlencode({"command": "/report-contact", "text": text, "user_id": user, "team_id": "T1",
                                       "channel_id": "D1", "trigger_id": f"trig-{time.time()}",
                                       "response_url": "http://x"})
        return await post(self.http, self.url + "/slack/events", body, FORM)

    async def submit(self, view: dict, value: dict, user: str = "U1"):
        view = {**view, "id": "V1", "state": {"values": {"answer": {"value": value}}}}
        return await self.interact({"type": "view_submission", "user": {"id": user}, "trigger_id": "trig",
                                    "view": view})

    def kill(self) -> None:
        """kill -9: no clean-up of any kind."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def logs(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.http:
            await self.http.close()


def dm(text: str, ts: str = "111.222", user: str = "U1") -> dict:
    return {"type": "message", "channel_type": "im", "channel": "D" + user[1:], "user": user, "text": text, "ts": ts}


radio = lambda v: {"type": "radio_buttons", "selected_option": {"value": v}}  # noqa: E731
typed = lambda v: {"type": "plain_text_input", "value": v}  # noqa: E731
person = lambda u: {"type": "users_select", "selected_user": u}  # noqa: E731
# One answer per step of the flow, as the modal sends them.
ANSWERS = [radio("facebook"), radio("message"), radio("public"), typed("yesterday 9pm"),
           typed("Sent me a wave emoji"), radio("yes"), person("UMGR"), radio("yes"), radio("not_appropriate"),
           radio("done")]


def step_of(view: dict) -> str:
    return json.loads(view.get("private_metadata") or "{}").get("step", "")
