"""/report-contact end to end: the five steps, risk paths, bad answers, restarts, duplicates, the log."""
from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import os
import stat
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest

from bot.app import build_core
from bot.cli import main
from bot.storage import SCHEMA_VERSION, SQLiteStore
from handlers.conversation import Incoming

from .conftest import ROOT

TZ = ZoneInfo("Europe/London")
NOW = dt.datetime(2026, 11, 21, 14, 30, tzinfo=TZ)
ORDINARY = ["/report-contact", "Facebook", "friend request", "former service user", "yesterday 9pm",
            "Sent me a friend request and a wave emoji", "yes", "Priya Shah", "yes", "not appropriate", "done"]


@pytest.fixture
def db(tmp_path):
    return tmp_path / "data" / "incidents.db"


@pytest.fixture
def core(db):
    return build_core(ROOT / "app.yaml", store=SQLiteStore(db), clock=lambda: NOW)


def chat(core, lines, user="nurse1"):
    """Drive the console chat with these lines; return what it printed."""
    from bot.console import run_console
    out = io.StringIO()
    run_console(core, io.StringIO("\n".join(lines) + "\n"), out, user=user)
    return out.getvalue()


def test_ordinary_contact_walks_five_steps_and_logs_it(core):
    out = chat(core, ORDINARY)
    for n in range(1, 6):
        assert f"Step {n} of 5" in out
    assert "don't delete" in out.lower() and "PALS" in out and "Who can send you friend requests" in out
    assert "Your report is INC-2026-0001" in out
    inc = core.store.get_incident("INC-2026-0001")
    assert inc.status == "completed" and inc.user_id == "nurse1" and inc.surface == "console"
    assert inc.fields == {"platform": "facebook", "contact_kind": "request", "from_whom": "former_service_user",
                          "occurred_at": "2026-11-20T21:00:00+00:00", "description": "Sent me a friend request and a wave emoji",
                          "screenshot": "yes", "line_manager": "Priya Shah", "notify_manager": "yes",
                          "redirect": "not_appropriate", "privacy": "done"}
    assert [a.step for a in inc.answers] == [s for s in inc.fields]
    assert all(a.answered_at for a in inc.answers) and inc.risk_flags == []
    escs = core.store.escalations(incident_ref=inc.ref)
    assert [(e.kind, e.target, e.status) for e in escs] == [("line_manager", "Priya Shah", "sent")]


@pytest.mark.parametrize("description, flag, kind, shown", [
    ("Said she is going to kill herself tonight", "suicide", "safeguarding", "116 123"),
    ("Says he knows where I live and I'll regret it", "threat", "safeguarding", "999"),
    ("A 12 year old sent it, says her dad hits her", "child_at_risk", "safeguarding", "999"),
    ("Keeps messaging abusive comments and won't stop", "harassment", "comms", "incident reporting system"),
    ("Says he is a journalist writing a story about the ward", "media", "comms", "comms team handles all media"),
    ("Wants to complain about the care her son got", "complaint", "comms", "PALS"),
    ("Asked for figures on how many patients died, says it's a freedom of information request", "foi", "foi", "FOI team"),
])
def test_each_risk_path_shows_help_at_once_and_escalates(core, description, flag, kind, shown):
    out = chat(core, ORDINARY[:5] + [description])
    crisis_at = out.index(shown)
    next_question = out.index("Have you kept a screenshot")
    assert crisis_at < next_question, "crisis information must come before the next question"
    inc = core.store.list_incidents()[0]
    assert inc.status == "in_progress" and flag in inc.risk_flags
    escs = core.store.escalations(incident_ref=inc.ref)
    assert any(e.kind == kind and e.status == "sent" and description in e.summary for e in escs)


def test_risk_in_the_opening_message_is_triaged_before_any_question(core):
    out = chat(core, ["/report-contact a patient DM'd me saying they want to end their life"])
    assert out.index("Samaritans") < out.index("Which platform")
    assert core.store.list_incidents()[0].risk_flags == ["suicide"]


@pytest.mark.parametrize("step_answers, bad, expect", [
    (1, "", "didn't get an answer"),
    (1, "myspace", "didn't recognise"),
    (1, "🙂🙂", "didn't recognise"),
    (1, "'; DROP TABLE incidents; --", "didn't recognise"),
    (4, "tomorrow 3pm", "in the future"),
    (4, "31/02/2026 10:00", "isn't a real date"),
    (4, "next week", "in the future"),
    (5, "x" * 10_000, "10,000 characters"),
    (5, "!!! ???", "not just symbols"),
    (6, "maybe", "yes or no"),
])
def test_bad_answers_reprompt_and_store_nothing(core, step_answers, bad, expect):
    out = chat(core, ORDINARY[:step_answers] + [bad])
    assert expect in out
    inc = core.store.list_incidents()[0]
    assert len(inc.answers) == step_answers - 1
    assert core.store.db.execute("SELECT count(*) FROM incidents").fetchone()[0] == 1


def test_sql_looking_description_is_stored_as_text(core):
    chat(core, ORDINARY[:5] + ["Robert'); DROP TABLE incidents;-- said hi"])
    inc = core.store.list_incidents()[0]
    assert inc.fields["description"] == "Robert'); DROP TABLE incidents;-- said hi"


def test_back_changes_an_answer_and_cancel_stops(core):
    out = chat(core, ORDINARY[:3] + ["back", "back", "Instagram", "friend request", "cancel"])
    inc = core.store.list_incidents()[0]
    assert inc.fields["platform"] == "instagram" and inc.status == "cancelled"
    assert "cancelled" in out
    again = chat(core, ["/report-contact"])
    assert "INC-2026-0002" in again


def test_a_button_for_another_step_changes_nothing(core):
    conv = core.conversation
    conv.handle(Incoming("slack", "U1", "/report-contact"))
    replies = conv.handle_action("slack", "U1", "report_answer", "from_whom:public")
    inc = core.report.active("slack", "U1")
    assert inc.step == "platform" and inc.answers == []
    assert "different question" in replies[0].plain_text()
    conv.handle_action("slack", "U1", "report_answer", "platform:tiktok")
    assert core.report.active("slack", "U1").fields["platform"] == "tiktok"


def test_the_same_event_twice_is_handled_once(core):
    conv = core.conversation
    first = conv.handle(Incoming("slack", "U2", "/report-contact", event_id="Ev1"))
    dup = conv.handle(Incoming("slack", "U2", "/report-contact", event_id="Ev1"))
    conv.handle(Incoming("slack", "U2", "Facebook", event_id="Ev2"))
    conv.handle(Incoming("slack", "U2", "Facebook", event_id="Ev2"))
    assert first and dup == []
    assert core.store.db.execute("SELECT count(*) FROM incidents").fetchone()[0] == 1
    inc = core.report.active("slack", "U2")
    assert [a.step for a in inc.answers] == ["platform"] and inc.step == "contact_kind"


def test_restart_mid_flow_in_a_new_process_resumes_at_the_same_step(db, tmp_path):
    env = {**os.environ, "POLICYBOT_DATABASE": str(db), "USER": "nightnurse", "LOGNAME": "nightnurse"}
    cmd = [sys.executable, "-m", "bot.cli", "chat"]
    subprocess.run(cmd, input="\n".join(ORDINARY[:4]) + "\n", env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    second = subprocess.run(cmd, input="hello\n", env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert "When did it happen?" in second.stdout and "INC-2026-0001" in second.stdout
    store = SQLiteStore(db)
    inc = store.get_incident("INC-2026-0001")
    assert inc.step == "occurred_at" and inc.status == "in_progress" and len(inc.answers) == 3


def test_database_is_private_wal_and_migrates_forward(tmp_path):
    path = tmp_path / "new" / "x.db"
    old = SQLiteStore(path, migrate_to=1)
    inc = old.create_incident("console", "u", "platform")
    assert old.schema_version == 1
    old.close()
    store = SQLiteStore(path)
    assert store.schema_version == SCHEMA_VERSION and store.get_incident(inc.ref).user_id == "u"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000


def test_loose_permissions_on_an_existing_file_are_tightened(tmp_path):
    path = tmp_path / "x.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    SQLiteStore(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_failed_delivery_is_recorded_and_retried_not_lost(core):
    from handlers.escalation import Actor

    class Flaky:
        def __init__(self):
            self.calls = 0
            self.told = []

        async def send(self, esc):
            self.calls += 1
            if self.calls == 1:
                raise ConnectionError("slack is down")
            return "msg-1"

        async def update(self, esc):
            pass

        async def tell_user(self, user, text):
            self.told.append((user, text))

        async def may_act(self, esc, actor):
            return True

    notifier = Flaky()
    core.escalations.add_notifier("console", notifier)
    esc = core.escalations.raise_("comms", "a media enquiry", surface="console", user="nurse1")
    asyncio.run(core.escalations.deliver_pending())
    failed = core.store.get_escalation(esc.id)
    assert failed.status == "failed" and "slack is down" in failed.last_error and failed.attempts == 1
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)
    asyncio.run(core.escalations.deliver_pending(now=later))
    sent = core.store.get_escalation(esc.id)
    assert sent.status == "sent" and sent.attempts == 2 and sent.message_ref == "msg-1"
    alex = Actor("console", "alex", name="Alex")
    asyncio.run(core.escalations.acknowledge(esc.id, alex))
    asyncio.run(core.escalations.resolve(esc.id, alex))
    done = core.store.get_escalation(esc.id)
    assert done.status == "resolved" and done.acknowledged_by == "Alex" and done.resolved_at
    assert done.acknowledged_by_id == done.resolved_by_id == "console:alex"
    assert [u for u, _ in notifier.told] == ["nurse1", "nurse1"]


# --- the CLI for the comms team ---------------------------------------------------------

def cli(args, db, stdin=""):
    out = io.StringIO()
    os.environ["POLICYBOT_DATABASE"] = str(db)
    try:
        code = main(args, stdin=io.StringIO(stdin), stdout=out)
    finally:
        os.environ.pop("POLICYBOT_DATABASE")
    return code, out.getvalue()


def test_export_json_shows_every_field(core, db):
    chat(core, ORDINARY[:5] + ["Says he knows where I live"] + ORDINARY[6:])
    code, out = cli(["incidents", "export", "--json"], db)
    [row] = json.loads(out)
    for key in ("ref", "status", "surface", "user_id", "created_at", "updated_at", "completed_at", "platform",
                "contact_kind", "from_whom", "occurred_at", "description", "screenshot", "line_manager",
                "notify_manager", "redirect", "privacy", "risk_flags", "answers", "escalations"):
        assert row[key] not in (None, [], ""), key
    assert {e["kind"] for e in row["escalations"]} == {"safeguarding", "line_manager"}
    assert all("answered_at" in a for a in row["answers"])
    code, out = cli(["incidents", "export", "--csv"], db)
    assert out.splitlines()[0].startswith("ref,status") and "INC-2026-0001" in out


def test_stats_and_show(core, db):
    chat(core, ORDINARY)
    code, out = cli(["incidents", "stats", "--json"], db)
    stats = json.loads(out)
    assert stats["By platform"] == {"facebook": 1} and stats["By status"] == {"completed": 1}
    code, out = cli(["incidents", "show", "inc-2026-0001"], db)
    assert code == 0 and "Priya Shah" in out and "Answers:" in out


def test_purge_deletes_only_what_it_says(core, db):
    chat(core, ORDINARY)
    chat(core, ORDINARY, user="nurse2")
    old = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=400)).isoformat()
    core.store.db.execute("UPDATE incidents SET created_at = ? WHERE ref = 'INC-2026-0001'", [old])
    code, out = cli(["incidents", "purge", "--older-than", "1y"], db, stdin="no\n")
    assert code == 1 and "INC-2026-0001" in out and "Nothing deleted" in out
    assert core.store.get_incident("INC-2026-0001")
    code, out = cli(["incidents", "purge", "--older-than", "1y", "--yes"], db)
    assert code == 0 and "Deleted 1 incident" in out and "INC-2026-0002" not in out
    assert core.store.get_incident("INC-2026-0001") is None and core.store.get_incident("INC-2026-0002")
    assert core.store.escalations(incident_ref="INC-2026-0001") == []


def test_bad_duration_is_a_clear_error(db, capsys):
    code, _ = cli(["incidents", "purge", "--older-than", "forever"], db)
    assert code == 2 and "--older-than" in capsys.readouterr().err
