"""`policybot serve`: one aiohttp server for every chat platform.

Routes: GET /healthz, POST /api/messages for Teams, and POST /slack/events when Slack
runs in HTTP mode. In Socket
Mode the app connects out to Slack instead (for trusts with no public URL) and a
watchdog reconnects it if the connection drops. A background loop retries any
escalation not yet delivered. Logs carry no message text. SIGTERM stops it gracefully
(requests in flight finish). With `reuse_port`, several processes share the port
(`policybot serve --workers N`, see bot/workers.py).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal

from aiohttp import web

from handlers.store import StoreUnavailable

log = logging.getLogger("policybot.server")
WATCHDOG_EVERY = 20.0   # seconds between Socket Mode connection checks


def build_web_app(core, slack=None, teams=None) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)

    async def healthz(request: web.Request) -> web.Response:
        """Liveness (always 200 while the process serves) and whether the database answers right now."""
        ping = getattr(core.store, "ping", None)
        database = "none" if core.store is None else ("ok" if ping is None or ping() else "unavailable")
        return web.json_response({"ok": True, "slack": slack is not None, "teams": teams is not None,
                                  "database": database, "pid": os.getpid()})

    app.router.add_get("/healthz", healthz)
    if teams is not None:
        import jwt

        async def teams_messages(request: web.Request) -> web.Response:
            try:
                return await teams.adapter.process(request, teams.bot) or web.Response(status=201)
            except (jwt.PyJWTError, ValueError):  # a malformed token is a failed authentication, not a crash
                raise web.HTTPUnauthorized() from None

        app.router.add_post("/api/messages", teams_messages)
    if slack is not None and slack.settings.mode == "http":
        from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

        async def slack_events(request: web.Request) -> web.Response:
            bolt_response = await slack.app.async_dispatch(await to_bolt_request(request))
            return await to_aiohttp_response(bolt_response)

        app.router.add_post("/slack/events", slack_events)
    app.cleanup_ctx.append(_background(core))
    return app


def _background(core):
    async def ctx(app: web.Application):
        task = asyncio.create_task(_retry_loop(core)) if core.escalations else None
        yield
        if task:
            task.cancel()
    return ctx


async def _retry_loop(core) -> None:
    away = False
    while True:
        await asyncio.sleep(core.config.escalation_retry_every)
        try:
            await core.escalations.deliver_pending()
        except StoreUnavailable as exc:  # the database is away: they stay pending until it is back
            if not away:  # once per outage, not every pass
                log.warning("escalation deliveries wait for the database: %s", exc)
            away = True
            continue
        except Exception:  # keep retrying; each failure is also recorded on the escalation
            log.exception("escalation delivery pass failed")
        if away:
            log.info("the database is back; escalation deliveries resumed")
            away = False


async def socket_mode_watchdog(handler, every: float = WATCHDOG_EVERY) -> None:
    """Reconnect Socket Mode when the connection is lost and the client has not recovered."""
    while True:
        await asyncio.sleep(every)
        try:
            if not await handler.client.is_connected():
                log.warning("Socket Mode connection lost; reconnecting")
                await handler.client.connect()
        except Exception:
            log.exception("Socket Mode reconnect failed; will try again")


async def start_socket_mode(slack, app_token: str, watchdog_every: float = WATCHDOG_EVERY):
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
    handler = AsyncSocketModeHandler(slack.app, app_token, web_client=slack.client)
    await handler.connect_async()
    watchdog = asyncio.create_task(socket_mode_watchdog(handler, watchdog_every))
    return handler, watchdog


async def serve(core, host: str, port: int, env=os.environ, reuse_port: bool = False) -> None:
    """Run until stopped (SIGTERM or SIGINT). The Slack surface is built here, inside the event loop its
    HTTP session needs."""
    slack = teams = None
    if core.config.teams:
        from .teams.bot import teams_surface_from_env
        teams = teams_surface_from_env(core, env, host)
    if core.config.slack:
        from .slack.app import slack_surface_from_env
        slack = slack_surface_from_env(core, core.config.slack, env)
    runner = web.AppRunner(build_web_app(core, slack, teams))
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
    await site.start()
    log.info("listening on http://%s:%s (pid %s)", host, port, os.getpid())
    from .workers import tell_ready
    tell_ready()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    socket = None
    if slack and slack.settings.mode == "socket":
        socket = await start_socket_mode(slack, env["SLACK_APP_TOKEN"])
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        if socket:
            socket[1].cancel()
            await socket[0].close_async()
        await runner.cleanup()
        if slack:
            await slack.close()
