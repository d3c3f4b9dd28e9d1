"""Policy owners see where the policy falls short: unhelpful answers per clause, and the questions the bot
could not answer, kept only with identifiers removed and only when app.yaml says so."""
from __future__ import annotations

import io
import os

import pytest

from bot.app import build_core
from bot.cli import main
from handlers.conversation import Incoming

from .conftest import ROOT


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    monkeypatch.setenv("POLICYBOT_DATABASE", str(tmp_path / "fb.db"))
    return build_core(ROOT / "app.yaml")


def say(core, text, user="U1"):
    return core.conversation.respond(Incoming(surface="console", user=user, text=text))


def listing(*args):
    out = io.StringIO()
    assert main(["feedback", "list", *args], stdout=out) == 0
    return out.getvalue()


def test_an_unanswered_question_is_listed_without_its_identifiers(fresh):
    say(fresh, "how do I claim mileage for my visit to 07700 900123 on Tuesday?")
    text = listing("--unanswered")
    assert "Questions the policy didn't answer (1)" in text
    assert "mileage" in text and "07700 900123" not in text and "removed]" in text


def test_votes_are_counted_per_clause_with_their_reasons(fresh):
    conv = fresh.conversation
    conv.handle_action("console", "U1", "feedback", "down|bsmhft 3.1")
    conv.handle_action("console", "U2", "feedback", "down|bsmhft 3.1")
    conv.handle_action("console", "U3", "feedback", "up|bsmhft 3.1")
    conv.handle_action("console", "U4", "feedback", "up|hpft 6")
    text = listing()
    line = next(l for l in text.splitlines() if "bsmhft 3.1" in l)
    assert "not helpful   2" in line and "helpful   1" in line
    assert listing("--csv").splitlines()[0] == "date,surface,kind,citation,text"


def test_with_store_unanswered_off_no_question_text_is_kept(tmp_path, monkeypatch):
    cfg = (ROOT / "app.yaml").read_text().replace("store_unanswered: true", "store_unanswered: false")
    cfg = cfg.replace("local_rules: knowledge/trusts/bsmhft.yaml", f"local_rules: {ROOT / 'knowledge/trusts/bsmhft.yaml'}")
    (tmp_path / "app.yaml").write_text(cfg)
    monkeypatch.setenv("POLICYBOT_DATABASE", str(tmp_path / "fb.db"))
    core = build_core(tmp_path / "app.yaml")
    say(core, "how do I claim mileage for my community visits?")
    assert [r for r in core.store.feedback() if r["vote"] == "not_found"] == []


def test_a_bad_since_date_is_a_clear_error(capsys):
    assert main(["feedback", "list", "--since", "last tuesday"]) == 2
    assert "--since" in capsys.readouterr().err
