"""What a message is taken for, driven through the console end to end: every draft checked, every question
answered, risk caught anywhere, pastes whole, buttons pressable, a report never fed by accident."""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import pty
import re
import select
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest

from bot.app import build_core
from bot.console import run_console
from bot.storage import SQLiteStore
from handlers.conversation import Incoming

from .conftest import ROOT, SHARED
from .score_routing import load

NOW = dt.datetime(2026, 11, 21, 14, 30, tzinfo=ZoneInfo("Europe/London"))
VERDICTS = ("OK to post", "Revise before posting", "Don't post this")
DATA = ROOT / "tests" / "data"


@pytest.fixture
def core(tmp_path):
    return build_core(ROOT / "app.yaml", store=SQLiteStore(tmp_path / "chat.db"), clock=lambda: NOW)


def chat(core, lines, user="nurse1") -> str:
    out = io.StringIO()
    run_console(core, io.StringIO("\n".join(lines) + "\n"), out, user=user)
    return out.getvalue()


def verdicts(out: str) -> list[str]:
    return re.findall("|".join(map(re.escape, VERDICTS)), out)


class Clock:
    """A monotonic clock the test moves on, for pauses ("a few minutes later")."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the routing figures ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["routing.jsonl", "routing_heldout.jsonl", "routing_heldout2.jsonl",
                                  "routing_heldout3.jsonl"])
def test_routing_set_is_routed_right_and_no_question_gets_a_verdict(core, name):
    rows = load(DATA / name)
    wrong, verdict_for_question = [], []
    for n, row in enumerate(rows):
        outcome = core.conversation.respond(Incoming("console", f"u{n}", row["text"]))
        if outcome.kind not in row["accept"]:
            wrong.append((row["id"], row["accept"], outcome.kind))
        if not set(row["accept"]) & {"check", "both"} and outcome.kind == "check":
            verdict_for_question.append(row["id"])
    assert len(rows) >= 50 and (name != "routing.jsonl" or len(rows) >= 200)
    assert 1 - len(wrong) / len(rows) >= 0.97, wrong
    assert not verdict_for_question


@pytest.mark.skipif(not (SHARED / "eval").exists(), reason="needs ../shared/eval")
@pytest.mark.parametrize("name", ["drafts.jsonl", "drafts_b.jsonl", "questions.jsonl", "questions_b.jsonl"])
def test_shared_drafts_are_checked_and_questions_answered(core, name):
    rows = load(SHARED / "eval" / name)
    kinds = [core.conversation.respond(Incoming("console", f"s{n}", r["text"])).kind for n, r in enumerate(rows)]
    right = sum(k in r["accept"] for k, r in zip(kinds, rows))
    assert right / len(rows) >= 0.97
    if name.startswith("questions"):
        assert kinds.count("check") == 0   # a question never gets a verdict


# -- the defects, end to end in the console -----------------------------------------------

@pytest.mark.parametrize("draft, problem", [
    ("Anyone else think our matron is useless?", "Attacks a colleague"),
    ("Does anyone know the family of NHS no 943 476 5919? ring me on 07700 900123", "Could identify a patient"),
])
def test_a_draft_phrased_as_a_question_is_checked(core, draft, problem):
    out = chat(core, [draft])
    assert verdicts(out) == ["Don't post this"] and problem in out
    assert "couldn't find" not in out


@pytest.mark.parametrize("question", [
    "wheres the staff car parking at the hospital and how much is a permit",
    "patients mum keeps messaging me on insta asking how her son is doing",
    "tell me about the hertfordshire suicide principles",
])
def test_a_question_without_a_question_mark_is_answered_never_told_ok_to_post(core, question):
    out = chat(core, [question])
    assert verdicts(out) == []
    assert "couldn't find this in the social media policies" in out or re.search(r"section [\w.-]+:", out)


def test_the_hertfordshire_question_gets_the_hertfordshire_clause(core):
    out = chat(core, ["tell me about the hertfordshire suicide principles"])
    assert "Hertfordshire Joint Social Media Agreement" in out and "Samaritans" in out


def test_a_clinical_incident_gets_crisis_lines_incident_procedure_and_safeguarding(core):
    out = chat(core, ["my patient in bed 4 tried to hang himself, what should i do"])
    assert "116 123" in out and "999" in out
    assert "follow your trust's incident procedure" in out.lower()
    assert core.config.trust.safeguarding.name in out
    assert "couldn't find" not in out and verdicts(out) == []
    # and the safeguarding lead can be alerted from there, with a button pressed by its number
    after = chat(core, ["my patient in bed 4 tried to hang himself, what should i do", "1"], user="nurse9")
    assert "alerted the safeguarding lead" in after
    assert [e.kind for e in core.store.escalations()] == ["safeguarding"]


def test_risk_in_a_draft_or_question_brings_the_crisis_lines_first(core):
    out = chat(core, ["What should I do if a patient messages me saying they want to end their life?"])
    assert out.index("116 123") < out.index("section ")   # crisis lines, then the policy answer
    assert verdicts(out) == []
    draft = chat(core, ["can I post this? can't go on anymore, saying goodbye to everyone tonight x"], user="n2")
    assert draft.index("116 123") < draft.index(verdicts(draft)[0])


def test_an_nhs_number_in_a_question_is_flagged_and_not_passed_on(core):
    out = chat(core, ["a patient gave me her NHS number 943 476 5919 over instagram what do i do with it", "3"])
    assert "looks like an NHS number" in out and verdicts(out) == []
    sent = core.store.escalations()
    assert len(sent) == 1 and "943 476 5919" not in sent[0].summary and "NHS number removed" in sent[0].summary


def test_a_pasted_multi_line_draft_is_one_message_in_a_terminal(tmp_path):
    """A real terminal (a pty): the paste arrives in one go and gets one verdict, not one per line."""
    env = {**os.environ, "POLICYBOT_DATABASE": str(tmp_path / "pty.db")}
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "chat"], stdin=slave, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, env=env)
    os.close(slave)
    out = b""

    def read_until(marker: bytes) -> None:
        nonlocal out
        while marker not in out:
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            assert ready, f"no {marker!r} from the console; got {out[-500:]!r}"
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"console ended before {marker!r}: {out[-500:]!r} {proc.stderr.read()!r}"
            out += chunk
    try:
        read_until(b"you> ")
        paste = "Loving life on the ward today!\n\nThe lad in bay 3 thinks the telly is talking to him lol\n#NurseLife\n"
        os.write(master, paste.encode())
        read_until(b"Checked as a post")
        read_until(b"you> ")
        os.write(master, b"quit\n")
        proc.wait(timeout=60)
    finally:
        proc.kill() if proc.poll() is None else None
        os.close(master)
    text = out.decode()
    assert verdicts(text) == ["Don't post this"] and "bay 3" in text


def test_a_block_between_triple_quotes_is_one_message(core):
    out = chat(core, ['"""', "Loving life on the ward today!", "", "The lad in bay 3 thinks the telly is talking to him lol",
                      '"""'])
    assert verdicts(out) == ["Don't post this"]


def test_console_buttons_are_numbered_and_press_the_same_actions(core):
    out = chat(core, ["an ex-patient added me on Facebook, what do I do?", "1"])
    assert "[1] Helpful  [2] Not helpful  [3] Ask a person" in out and "Thanks, glad it helped." in out
    assert verdicts(out) == []

    out = chat(core, ["an ex-patient added me on Facebook, what do I do?", "[Not helpful]", "it quoted too much"], "n2")
    assert "What was wrong with the answer?" in out and "Thanks, that helps us improve" in out
    assert core.store.db.execute("SELECT vote, reason FROM feedback").fetchall()[-1] == ("down", "it quoted too much")

    out = chat(core, ["can I post this? the lad in bay 3 thinks he's the king lol", "Why?", "Ask comms to review", "yes"],
               "n3")
    assert "[1] Ask comms to review  [2] Why?" in out and "Why: bsmhft 3.1" in out
    assert "Send this draft to the comms team's channel for review?" in out and "Sent to the comms team" in out
    assert [e.kind for e in core.store.escalations()] == ["review"]

    out = chat(core, ["wheres the staff car parking at the hospital", "ask the comms team"], "n4")
    assert "Sent to the comms team" in out
    assert [e.kind for e in core.store.escalations()] == ["review", "comms"]


def test_a_typed_button_label_with_nothing_to_press_is_not_checked_as_a_draft(core):
    out = chat(core, ["[Why?]", "Ask comms to review"])
    assert verdicts(out) == [] and out.count("There's no") == 2


def test_report_steps_can_be_answered_by_button_number(core):
    out = chat(core, ["/report-contact", "2", "2", "5"])
    inc = core.report.active("console", "nurse1")
    assert inc.fields["platform"] == "facebook" and inc.fields["contact_kind"] == "message"
    assert inc.fields["from_whom"] == "unknown" and "[8] Back  [9] Cancel" in out


def test_after_a_restart_a_report_in_progress_is_not_fed_by_accident(tmp_path):
    db = tmp_path / "r.db"
    first = build_core(ROOT / "app.yaml", store=SQLiteStore(db), clock=lambda: NOW)
    chat(first, ["/report-contact", "Instagram", "message", "member of the public", "yesterday 9pm"])
    assert first.report.active("console", "nurse1").step == "description"

    again = build_core(ROOT / "app.yaml", store=SQLiteStore(db), clock=lambda: NOW)   # the process restarted
    out = chat(again, ["can I post this?", "Lovely afternoon at the summer fete with the team",
                       "He says he's 15 and wants to meet up, I think he's being groomed", "continue",
                       "He says he's 15 and wants to meet up, I think he's being groomed"])
    inc = again.store.get_incident("INC-2026-0001")
    assert [a.step for a in inc.answers if a.step == "description"] == ["description"]
    assert inc.fields["description"].startswith("He says he's 15")
    assert "Paste the text of your draft" in out and verdicts(out) == ["OK to post"]
    assert "is waiting at step 2 of 5" in out
    assert "You have a report in progress (INC-2026-0001, step 2 of 5): continue, or cancel?" in out
    assert out.index("continue, or cancel?") < out.index("A child or adult at risk")


def test_after_a_pause_the_next_answer_is_asked_about_first(core):
    clock = Clock()
    core.report.monotonic = clock
    chat(core, ["/report-contact", "Facebook"])
    clock.now += 10 * 60
    out = chat(core, ["friend request"])
    inc = core.report.active("console", "nurse1")
    assert "continue, or cancel?" in out and "contact_kind" not in inc.fields
    out = chat(core, ["friend request"])
    assert core.report.active("console", "nurse1").fields["contact_kind"] == "request"


def test_a_question_mid_report_is_answered_and_the_report_waits(core):
    out = chat(core, ["/report-contact", "should I block her on facebook or is that rude?"])
    inc = core.report.active("console", "nurse1")
    assert inc.step == "platform" and inc.answers == []
    assert "waiting at step 2 of 5" in out and verdicts(out) == []


@pytest.mark.parametrize("description, shown, not_shown", [
    ("Says he is going to kill himself tonight", "Crisis message", "Redirect message"),
    ("Keeps sending abusive messages and won't stop", "not even a redirect", "Redirect message"),
    ("Says he is a journalist writing a story about the ward", "Don't reply to the journalist at all", "Redirect message"),
    ("Says he knows where I live", "not even a redirect", "Redirect message"),
    ("Sent me a friend request and a wave emoji", "Redirect message", "not even a redirect"),
])
def test_step_4_follows_the_risk(core, description, shown, not_shown):
    out = chat(core, ["/report-contact", "Facebook", "message", "former service user", "yesterday 9pm", description, "yes",
                      "Priya Shah", "no"])
    step4 = out[out.index("Step 4 of 5"):]
    assert shown in step4 and not_shown not in step4
    if "kill himself" in description:
        assert "116 123" in step4 and "PALS" not in step4


def test_a_follow_up_is_read_with_the_previous_question(core):
    clock = Clock()
    core.conversation.monotonic = clock
    out = chat(core, ["can I accept a friend request from a patient on Facebook?", "what about Instagram?"])
    assert "follow-up to your last question" in out and "3.2.1" in out.split("follow-up")[1]
    clock.now += 10 * 60
    out = chat(core, ["what about Instagram?"])
    assert "follow-up" not in out


def test_chat_jsonl_reports_kind_verdict_citations_and_risk(tmp_path):
    lines = [{"id": "a", "text": "Anyone else think our matron is useless?"},
             {"id": "b", "text": "can i post a selfie in uniform on instagram"},
             {"id": "c", "text": "my patient in bed 4 tried to hang himself, what should i do"},
             {"id": "d", "text": "/report-contact"},
             {"id": "e", "text": "Facebook", "user": "u1"}, {"id": "f", "text": "/report-contact", "user": "u1"},
             {"id": "g", "text": "1", "user": "u1"}, {"id": "h", "text": "help"}, {"id": "i", "text": "[Helpful]"},
             {"id": "j", "text": "Just had a former patient add me on facebook 😬 #awkward"}]
    env = {**os.environ, "POLICYBOT_DATABASE": str(tmp_path / "never-used.db")}
    proc = subprocess.run([sys.executable, "-m", "bot.cli", "chat", "--jsonl"], cwd=ROOT, env=env, check=True,
                          input="".join(json.dumps(x) + "\n" for x in lines), capture_output=True, text=True)
    out = {o["id"]: o for o in map(json.loads, proc.stdout.splitlines())}
    assert out["a"]["kind"] == "check" and out["a"]["verdict"] == "stop"
    assert out["b"]["kind"] == "answer" and out["b"]["verdict"] is None and out["b"]["citations"]
    assert out["c"]["kind"] == "risk" and out["c"]["risk_flags"] == ["suicide"]
    assert out["d"]["kind"] == "report" and out["f"]["kind"] == "report" and out["g"]["kind"] == "report"
    assert out["h"]["kind"] == "help" and out["i"]["kind"] == "action"
    assert out["j"]["kind"] in ("check", "both")
    assert not (tmp_path / "never-used.db").exists()   # a scoring run writes nothing to the incident log
