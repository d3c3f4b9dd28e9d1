"""The ask handler and CLI: cited answers, the not-found reply, help, and JSON Lines output."""
from __future__ import annotations

import io
import json

from bot.cli import main


def run(argv, stdin=""):
    out = io.StringIO()
    code = main(argv, stdin=io.StringIO(stdin), stdout=out)
    return code, out.getvalue()


def test_answer_quotes_and_cites_the_clause(core):
    reply = core.ask.answer("an ex-patient added me on Facebook, what do I do?")
    assert reply.kind == "answer"
    best = reply.data["answers"][0]
    assert best["citation"] == "bsmhft 3.2.1.unsolicited"
    assert "Do not engage" in best["quote"]
    text = reply.plain_text()
    assert "section 3.2.1.unsolicited" in text and "BSMHFT Social Media Policy v2" in text
    assert "bsmhft.commsteam@nhs.net" in text
    assert len(reply.data["answers"]) <= 3


def test_not_found_offers_comms_instead_of_guessing(core):
    reply = core.ask.answer("how much mileage can I claim")
    assert reply.kind == "not_found" and reply.data["answers"] == []
    assert "couldn't find" in reply.plain_text()
    assert [b.action for b in reply.buttons] == ["ask_comms"]


def test_empty_question_gets_help(core):
    for q in ("", "   "):
        reply = core.ask.answer(q)
        assert reply.kind == "help" and "/report-contact" in reply.plain_text()


def test_cli_readable_answer():
    code, out = run(["ask", "can I put the trust logo on my linkedin?"])
    assert code == 0 and "logo" in out and "section 3.1" in out


def test_cli_json():
    code, out = run(["ask", "--json", "whats the samaritans number"])
    data = json.loads(out)
    assert data["found"] and data["answers"][0]["citation"] == "bsmhft 3.2"
    assert "116 123" in data["answers"][0]["quote"]


def test_cli_jsonl_one_line_per_input_with_ids_and_errors():
    stdin = "\n".join([
        json.dumps({"id": "a", "question": "ex patient friend request"}),
        "not json at all",
        json.dumps({"id": "b"}),
        json.dumps({"id": "c", "question": "how do I book annual leave"}),
        "",
    ])
    code, out = run(["ask", "--jsonl"], stdin)
    lines = [json.loads(l) for l in out.splitlines()]
    assert code == 0 and len(lines) == 4
    assert lines[0]["id"] == "a" and lines[0]["found"] and lines[0]["answers"][0]["citation"].startswith("bsmhft")
    assert "error" in lines[1] and lines[1]["line"] == 2
    assert lines[2]["id"] == "b" and "error" in lines[2]
    assert lines[3]["id"] == "c" and lines[3]["found"] is False


def test_console_chat_answers_and_quits():
    code, out = run(["chat"], "help\nan ex patient added me on facebook\nquit\nnever read\n")
    assert code == 0
    assert "/report-contact" in out and "3.2.1.unsolicited" in out and "Bye" in out
