"""Deployment configuration from app.yaml: the trust profile, active packs, storage.

Secrets never come from here; adapters read tokens from the environment.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from handlers.retention import Retention, parse_period
from handlers.trust import Contact, CrisisLine, TrustProfile
from knowledge.packs import read_yaml

from .assets import SOURCE_ROOT, asset, installed, user_data_dir

PROJECT_DIR = SOURCE_ROOT
DEFAULT_CONFIG = asset("app.yaml")
SECRET_HINTS = ("token", "secret", "password", "signing")


class ConfigError(ValueError):
    """app.yaml cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class SlackSettings:
    """Where Slack escalations go and how the app connects (tokens come from the environment)."""
    mode: str = "http"                # http: POST /slack/events on policybot serve; socket: Socket Mode
    comms_channel: str = ""           # channel id for comms escalations and draft reviews
    safeguarding_channel: str = ""    # channel id for safeguarding alerts (default: comms_channel)
    # Who may acknowledge/resolve: members of the channel an escalation went to, or, when set, the
    # members of this user group (its id, S...) for that channel's escalations.
    comms_usergroup: str = ""
    safeguarding_usergroup: str = ""


@dataclass(frozen=True)
class TeamsSettings:
    """Who may register escalation channels and act on escalations in Teams."""
    # Team or channel ids (channelData.team.id / channelData.channel.id, 19:...) where
    # "@policybot register comms channel" (or safeguarding) is accepted.
    register_from: tuple[str, ...] = ()
    # User ids (29:... or Azure AD object ids) who may register channels anywhere and act on any escalation.
    admins: tuple[str, ...] = ()


@dataclass(frozen=True)
class AppConfig:
    path: Path
    trust: TrustProfile
    packs: tuple[str, ...]
    database: Path                    # the SQLite file, used when there is no database_url
    local_rules: Path | None = None
    slack: SlackSettings | None = None
    teams: bool = False  # serve POST /api/messages for Microsoft Teams (credentials from the environment)
    database_url: str | None = None   # PostgreSQL (several replicas): POLICYBOT_DATABASE_URL or storage.url
    retention: Retention = Retention()  # how long `policybot incidents purge` keeps each kind of record
    raw: dict = field(default_factory=dict, repr=False)
    teams_settings: TeamsSettings = field(default_factory=TeamsSettings)
    # requester surface -> destination surfaces for escalations (default: back where they came from)
    escalation_routes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    escalation_retry_every: float = 30.0   # seconds between passes over undelivered escalations
    escalation_lease: float = 300.0        # seconds a delivery holds an escalation before another may take it


def _req(data: dict, key: str, where: str):
    value = data.get(key) if isinstance(data, dict) else None
    if value in (None, "", [], {}):
        raise ConfigError(f"{where}: missing '{key}'")
    return value


def _contact(data, where: str) -> Contact:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with 'name' and 'email' or 'contact'")
    return Contact(name=str(_req(data, "name", where)), email=str(data.get("email") or ""),
                   contact=str(data.get("contact") or ""))


def _timezone(name, where: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    name = str(name or "Europe/London")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}.timezone: unknown time zone {name!r}") from None
    return name


def _no_secrets(data, where: str) -> None:
    """Refuse configs that carry credentials: they belong in environment variables."""
    if isinstance(data, dict):
        for k, v in data.items():
            if any(h in str(k).lower() for h in SECRET_HINTS) and v:
                raise ConfigError(f"{where}.{k}: secrets must come from environment variables, not app.yaml")
            _no_secrets(v, f"{where}.{k}")
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _no_secrets(v, f"{where}[{i}]")


def _shipped(path: Path) -> bool:
    """Is this the demo app.yaml that ships inside an installed package?"""
    try:
        return installed() and path.resolve() == DEFAULT_CONFIG.resolve()
    except OSError:
        return False


def _relative(path: Path, value: str) -> Path:
    """A path from app.yaml: relative to that file; for the shipped app.yaml of an installed package,
    relative to where the packages are installed (knowledge/trusts/... ships with `knowledge`)."""
    found = Path(value)
    if found.is_absolute():
        return found
    if _shipped(path) and not (path.parent / found).exists():
        return SOURCE_ROOT / found
    return path.parent / found


def load_config(path: str | os.PathLike | None = None) -> AppConfig:
    """Load app.yaml: the explicit path, else $POLICYBOT_CONFIG, else the shipped app.yaml."""
    path = Path(path or os.environ.get("POLICYBOT_CONFIG") or DEFAULT_CONFIG)
    data = read_yaml(path, error=ConfigError)
    f = str(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{f}: expected a mapping with 'trust' and 'packs'")
    _no_secrets(data, f)
    t = _req(data, "trust", f)
    w = f"{f}: trust"
    lines = []
    for i, line in enumerate(_req(t, "crisis_lines", w)):
        if not isinstance(line, dict):
            raise ConfigError(f"{w}.crisis_lines[{i}]: expected a mapping with 'name' and 'number'")
        lines.append(CrisisLine(name=str(_req(line, "name", f"{w}.crisis_lines[{i}]")),
                                number=str(_req(line, "number", f"{w}.crisis_lines[{i}]")),
                                note=str(line.get("note") or "")))
    channels = [_contact(c, f"{w}.approved_channels[{i}]") for i, c in enumerate(_req(t, "approved_channels", w))]
    trust = TrustProfile(
        name=str(_req(t, "name", w)), short_name=str(t.get("short_name") or t["name"]),
        comms=_contact(_req(t, "comms", w), f"{w}.comms"),
        safeguarding=_contact(_req(t, "safeguarding", w), f"{w}.safeguarding"),
        foi=_contact(t["foi"], f"{w}.foi") if t.get("foi") else None,
        crisis_lines=tuple(lines), approved_channels=tuple(channels),
        disclaimer=str(_req(t, "disclaimer", w)).strip(), timezone=_timezone(t.get("timezone"), w))
    packs = _req(data, "packs", f)
    if not isinstance(packs, list) or not all(isinstance(p, str) for p in packs):
        raise ConfigError(f"{f}: packs must be a list of pack names, primary first")
    storage = data.get("storage") or {}
    if not isinstance(storage, dict):
        raise ConfigError(f"{f}: storage must be a mapping")
    db = Path(str(storage.get("database") or "data/policybot.db"))
    if os.environ.get("POLICYBOT_DATABASE"):
        db = Path(os.environ["POLICYBOT_DATABASE"])
    elif not db.is_absolute():
        db = (user_data_dir() / db.name) if _shipped(path) else path.parent / db
    checker = data.get("checker") or {}
    if not isinstance(checker, dict):
        raise ConfigError(f"{f}: checker must be a mapping")
    local = checker.get("local_rules")
    local_rules = None
    if local:
        local_rules = _relative(path, str(local))
        if not local_rules.exists():
            raise ConfigError(f"{f}: checker.local_rules: {local_rules} does not exist")
    slack = _slack(data.get("slack"), f"{f}: slack")
    teams_raw = data.get("teams") or {}
    if not isinstance(teams_raw, dict):
        raise ConfigError(f"{f}: teams must be a mapping")
    teams = bool(teams_raw.get("enabled", False))
    return AppConfig(path=path, trust=trust, packs=tuple(packs), database=db, local_rules=local_rules,
                     database_url=_database_url(storage.get("url"), f"{f}: storage.url"),
                     slack=slack, teams=teams, raw=data,
                     retention=_retention(data.get("retention"), f"{f}: retention"), teams_settings=_teams(teams_raw, f"{f}: teams"),
                     escalation_routes=_routes(data.get("escalations"), f"{f}: escalations",
                                               {"slack"} if slack else set(), teams),
                     **_outbox_timing(data.get("escalations"), f"{f}: escalations"))


def _outbox_timing(raw, where: str) -> dict[str, float]:
    """escalations.retry_every and .lease, in seconds. Every replica retries undelivered escalations on its
    own; the lease is how long one that died mid-send holds an escalation before another takes it over."""
    raw = raw if isinstance(raw, dict) else {}
    out = {}
    for key, name, default in (("retry_every", "escalation_retry_every", 30.0), ("lease", "escalation_lease", 300.0)):
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{where}.{key}: expected a number of seconds above 0, e.g. {default:g}")
        out[name] = float(value)
    return out


def _ids(raw, where: str) -> tuple[str, ...]:
    if raw in (None, ""):
        return ()
    if not isinstance(raw, list) or not all(isinstance(i, (str, int)) for i in raw):
        raise ConfigError(f"{where}: expected a list of ids")
    return tuple(str(i).strip() for i in raw if str(i).strip())


def _teams(raw: dict, where: str) -> TeamsSettings:
    return TeamsSettings(register_from=_ids(raw.get("register_from"), f"{where}.register_from"),
                         admins=_ids(raw.get("admins"), f"{where}.admins"))


def _routes(raw, where: str, slack: set[str], teams: bool) -> dict[str, tuple[str, ...]]:
    """escalations.routes: {surface: [destination surfaces]}; each destination must be enabled."""
    if not raw:
        return {}
    if not isinstance(raw, dict) or not isinstance(raw.get("routes", {}), dict):
        raise ConfigError(f"{where}: expected 'routes:' mapping each surface to a list of surfaces")
    enabled = slack | ({"teams"} if teams else set())
    out = {}
    for surface, targets in (raw.get("routes") or {}).items():
        targets = [targets] if isinstance(targets, str) else targets
        if not isinstance(targets, list) or not targets:
            raise ConfigError(f"{where}.routes.{surface}: expected a list of surfaces, e.g. [teams, slack]")
        for t in targets:
            if t not in enabled:
                raise ConfigError(f"{where}.routes.{surface}: '{t}' is not an enabled surface "
                                  f"(enabled: {', '.join(sorted(enabled)) or 'none'})")
        out[str(surface)] = tuple(dict.fromkeys(str(t) for t in targets))
    return out


def _database_url(from_file, where: str) -> str | None:
    """PostgreSQL's URL: POLICYBOT_DATABASE_URL (which may carry the password), else storage.url from
    app.yaml, which must not: there the password comes from libpq's PGPASSWORD or PGPASSFILE."""
    url = os.environ.get("POLICYBOT_DATABASE_URL", "").strip()
    if url:
        where = "POLICYBOT_DATABASE_URL"
    elif from_file:
        url = str(from_file).strip()
        from urllib.parse import urlsplit
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        if password or "password=" in url.lower():
            raise ConfigError(f"{where}: a password must not be in app.yaml; set PGPASSWORD (or PGPASSFILE) in "
                              "the environment, or put the whole URL in POLICYBOT_DATABASE_URL")
    else:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"{where}: expected a postgresql:// URL (leave it unset to use SQLite)")
    return url


def _retention(raw, where: str) -> Retention:
    if not raw:
        return Retention()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of record kinds to periods, e.g. drafts: 7d")
    known = Retention.__dataclass_fields__
    unknown = sorted(set(map(str, raw)) - set(known))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown kind of record (use {', '.join(known)})")
    periods = {}
    for key, value in raw.items():
        try:
            periods[key] = parse_period(value)
        except ValueError as exc:
            raise ConfigError(f"{where}.{key}: {exc}") from None
    return Retention(**periods)


def _slack(raw, where: str) -> SlackSettings | None:
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    mode = str(raw.get("mode", "http"))
    if mode not in ("http", "socket"):
        raise ConfigError(f"{where}.mode: must be 'http' or 'socket'")
    comms = str(raw.get("comms_channel") or "")
    if not comms:
        raise ConfigError(f"{where}: missing 'comms_channel' (the channel id escalations go to)")
    return SlackSettings(mode=mode, comms_channel=comms, safeguarding_channel=str(raw.get("safeguarding_channel") or comms),
                         comms_usergroup=str(raw.get("comms_usergroup") or ""),
                         safeguarding_usergroup=str(raw.get("safeguarding_usergroup") or ""))
