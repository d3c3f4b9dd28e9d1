"""`policybot serve`: one aiohttp server for every chat platform.

Routes: GET /healthz (liveness: the process answers), GET /readyz (readiness: the
database answers, Slack's Socket Mode connection is up, policy packs are loaded), POST
/api/messages for Teams, and POST /slack/events when Slack runs in HTTP mode. In Socket
Mode the app connects out to Slack instead (for trusts with no public URL); slack_sdk's
client reconnects by itself when the connection closes, goes stale (missed pongs) or
Slack asks it to. A background loop retries any escalation not yet delivered. Logs
carry no message text. With `reuse_port`, several processes share the port (`policybot
serve --workers N`, see bot/workers.py); each says which it is in an X-Policybot-Worker header.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal

from aiohttp import web

from handlers.store import StoreUnavailable

log = logging.getLogger("policybot.server")


async def readiness(core, slack=None, socket=None) -> dict[str, str]:
    """Each dependency's state, "ok" or why not: what /readyz reports."""
    checks = {}
    try:
        if core.store is not None:
            core.store.ping()
        checks["database"] = "ok" if core.store is not None else "not configured"
    except StoreUnavailable as exc:  # names the database and why (refused, authentication...), never data
        checks["database"] = f"unreachable: {exc}"
    except Exception as exc:  # the reason, never data: sqlite errors name the problem, not the rows
        checks["database"] = f"unreachable ({type(exc).__name__})"
    packs = len(core.kb.packs) if core.kb else 0
    checks["packs"] = "ok" if packs and core.kb.index is not None else "no policy packs loaded"
    if slack is not None and slack.settings.mode == "socket":
        handler = socket() if callable(socket) else socket
        connected = handler is not None and await handler.client.is_connected()
        checks["slack_socket_mode"] = "ok" if connected else "not connected"
    return checks


def build_web_app(core, slack=None, teams=None, socket=None) -> web.Application:
    """`socket` is the Socket Mode handler, or a callable returning it once connected."""
    app = web.Application(client_max_size=1024 * 1024)

    async def which_worker(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Policybot-Worker"] = str(os.getpid())

    app.on_response_prepare.append(which_worker)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "slack": slack is not None, "teams": teams is not None})

    async def readyz(request: web.Request) -> web.Response:
        checks = await readiness(core, slack, socket)
        ready = all(v in ("ok", "not configured") for v in checks.values())
        return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if teams is not None:
        import jwt

        from .teams.edge import ActivityRequest, read_activity

        async def teams_messages(request: web.Request) -> web.Response:
            activity, refused = await read_activity(request)
            if refused:
                return web.json_response({"error": refused[1]}, status=refused[0])
            try:
                return await teams.adapter.process(ActivityRequest(request, activity), teams.bot) or web.Response(status=201)
            except (jwt.PyJWTError, ValueError):  # a malformed token is a failed authentication, not a crash
                raise web.HTTPUnauthorized() from None

        app.router.add_post("/api/messages", teams_messages)
    if slack is not None and slack.settings.mode == "http":
        from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

        from .slack.edge import refusal

        async def slack_events(request: web.Request) -> web.Response:
            refused = refusal(await request.read(), request.headers, slack.signing_secret)
            if refused:
                return web.json_response({"error": refused[1]}, status=refused[0])
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


async def start_socket_mode(slack, app_token: str, ping_interval: float = 10):
    """Connect to Slack over Socket Mode. No watchdog of our own: slack_sdk's client pings every
    `ping_interval` seconds and reconnects on a closed socket, missed pongs or Slack's 'disconnect'."""
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
    handler = AsyncSocketModeHandler(slack.app, app_token, web_client=slack.client, ping_interval=ping_interval)
    await handler.connect_async()
    return handler


async def serve(core, host: str, port: int, env=os.environ, reuse_port: bool = False) -> None:
    """Run until stopped (Ctrl-C or SIGTERM, as App Service sends). The Slack surface is built here,
    inside the event loop its HTTP session needs."""
    slack = teams = socket = None
    if core.config.teams:
        from .teams.bot import teams_surface_from_env
        teams = teams_surface_from_env(core, env, host)
    if core.config.slack:
        from .slack.app import slack_surface_from_env
        slack = slack_surface_from_env(core, core.config.slack, env)
    runner = web.AppRunner(build_web_app(core, slack, teams, socket=lambda: socket))
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
    await site.start()
    log.info("listening on http://%s:%s (pid %s)", host, port, os.getpid())
    from .workers import tell_ready
    tell_ready()
    stop = asyncio.Event()
    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    except (NotImplementedError, RuntimeError):  # not on this platform or thread
        pass
    try:
        if slack and slack.settings.mode == "socket":
            socket = await start_socket_mode(slack, env["SLACK_APP_TOKEN"])
        await stop.wait()
        log.info("stopping")
    finally:
        if socket:
            await socket.close_async()
        await runner.cleanup()
        if slack:
            await slack.close()
        core.close()
        if core.store is not None:
            core.store.close()  # PostgreSQL: the connections are closed, not dropped
