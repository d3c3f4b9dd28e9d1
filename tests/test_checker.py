"""The draft checker: each category caught, near misses left alone, tricks undone, bad input defined."""
from __future__ import annotations

import json
import time

import pytest
import yaml

from knowledge.checker import MAX_DRAFT_CHARS, Checker, RuleError, load_ruleset
from knowledge.checker.normalise import normalise

from .conftest import ROOT

HELDOUT = [json.loads(line) for name in ("drafts_heldout.jsonl", "drafts_heldout2.jsonl")
           for line in (ROOT / "tests" / "data" / name).read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def checker(core):
    """The rules tier alone: these tests pin what rules and detectors find and quote; the semantic tier
    on top is tested in test_semantic.py."""
    full = core.check.checker
    return Checker(full.ruleset, full.disclaimer, full.helpline, semantic=None)


def cats(result):
    return sorted({f.category for f in result.findings})


@pytest.mark.parametrize("item", HELDOUT, ids=[i["id"] for i in HELDOUT])
def test_heldout_drafts(checker, item):
    """Drafts written apart from the dev set: positives per category and near-miss negatives."""
    r = checker.check(item["text"], item["account"])
    assert (r.verdict, cats(r)) == (item["verdict"], sorted(item["categories"]))


def test_every_category_has_a_positive_and_the_set_has_negatives():
    from knowledge.checker.rules import load_categories
    covered = {c for i in HELDOUT for c in i["categories"]}
    assert covered == set(load_categories())
    assert sum(i["verdict"] == "ok" for i in HELDOUT) >= 15


@pytest.mark.parametrize("text, account, category", [
    ("They are a total p5ych0 lol", "personal", "stigmatising-language"),             # leetspeak
    ("Monday mood: s c h i z o", "personal", "stigmatising-language"),                # spaced out
    ("feeling so sch\u200bizo today", "personal", "stigmatising-language"),           # zero-width space
    ("ѕсhіzо vibes all round", "personal", "stigmatising-language"),                  # Cyrillic look-alikes
    ("Ｆｕｃｋ this", "personal", "offensive-content"),                                  # full-width letters
    ("Go f*** yourself", "personal", "offensive-content"),                            # masked
    ("He COMMITTED SUICIDE last year", "personal", "suicide-safe-messaging"),        # case
])
def test_tricks_do_not_dodge_rules(checker, text, account, category):
    assert category in cats(checker.check(text, account))


@pytest.mark.parametrize("text", [
    "We never share patient details online, and neither should you.",
    "Please don't ask people to DM us their home address.",
    "Never accept a friend request from a former patient.",
    "Words like 'schizo' and 'psycho' hurt. Choose kinder ones.",
    "Don't say \"committed suicide\"; say died by suicide. Samaritans: 116 123.",
])
def test_negated_or_quoted_mentions_are_not_violations(checker, text):
    assert checker.check(text, "official").verdict == "ok", cats(checker.check(text, "official"))


def test_finding_carries_offsets_words_citations_and_fix(checker):
    text = "Sad news: a man from our town committed suicide on Sunday."
    r = checker.check(text, "personal")
    f = next(f for f in r.findings if f.rule == "sms-language")
    assert text[f.start:f.end] == f.quote == "committed suicide"
    assert f.severity == "stop" and "herts principles" in f.cites and "died by suicide" in f.fix


def test_offsets_point_at_the_original_words_after_normalisation(checker):
    text = "ok so\u200b\u200b the lad in BAY  3 thinks he's Jesus 😂"
    r = checker.check(text, "personal")
    for f in r.findings:
        assert text[f.start:f.end] == f.quote


def test_verdict_follows_the_strictest_finding(checker):
    stop_and_revise = checker.check("Lost a lad to suicide, jumped off the bridge on Friday.", "personal")
    assert stop_and_revise.verdict == "stop"
    assert {f.severity for f in stop_and_revise.findings} == {"stop", "revise"}
    only_signpost = checker.check("Thinking of everyone who has lost someone to suicide today.", "personal")
    assert only_signpost.verdict == "revise"


@pytest.mark.parametrize("text, account, must_contain", [
    ("Another lad from round here committed suicide last week. Gutted.", "personal", "died by suicide"),
    ("Our trust's new rota policy is a shambles, honestly.", "personal", "personal views"),
    ("Did you know one in four people suffer from a mental illness?", "official", "experience a mental illness"),
    ("Today we remember everyone lost to suicide.", "official", "116 123"),
    ("Off to the loony bin for another shift", "personal", "Off to the work"),
])
def test_safer_version_is_offered_and_checks_clean(checker, text, account, must_contain):
    r = checker.check(text, account)
    assert r.revised and must_contain.lower() in r.revised.lower()
    again = checker.check(r.revised, account)
    assert not {f.rule for f in again.findings} & {f.rule for f in r.findings}


def test_no_safer_version_when_a_finding_needs_a_human(checker):
    r = checker.check("My patient on the PICU has waited 9 days for a bed, honestly our trust is a shambles", "personal")
    assert r.verdict == "stop" and r.revised is None


def test_official_account_needs_no_disclaimer_but_personal_does(checker):
    text = "Honestly I think moving our wards to 12-hour shifts was the right call."
    assert "missing-disclaimer" in cats(checker.check(text, "personal"))
    assert "missing-disclaimer" not in cats(checker.check(text, "official"))
    r = checker.check("Join us at the open day! Views my own.", "official")
    assert [f.rule for f in r.findings] == ["md-official-disclaimer"] and "Views my own" not in r.revised


# --- bad input ----------------------------------------------------------------------

def test_empty_draft_is_marked_empty(checker):
    for text in ("", "   ", "\n\t "):
        r = checker.check(text)
        assert r.empty and r.verdict is None


@pytest.mark.parametrize("text", [
    "\x00\x01\x02\x7f\x1b[31m",                 # binary / control characters only
    "🙂🎉💚🔥",                                 # emoji only
    "https://example.org/a?b=c https://bit.ly/x",  # URLs only
    "هذا منشور عادي عن يوم جميل",              # right-to-left text
    "\u202eevil reversed text\u202c",          # bidi override
    "����",                                     # replacement characters
])
def test_odd_input_gets_a_defined_verdict(checker, text):
    r = checker.check(text, "personal")
    assert r.verdict in ("ok", "revise", "stop")


def test_huge_draft_is_checked_up_to_the_limit_and_says_so(checker, core):
    text = ("Lovely day on the ward. " * 2000) + "the lad in bay 3 thinks he's the pope 😂"
    assert len(text) > MAX_DRAFT_CHARS
    r = checker.check(text, "personal")
    assert r.truncated and r.checked_chars == MAX_DRAFT_CHARS
    assert "checked the first 40,000" in core.check.render(r).plain_text()
    short = checker.check(text[-200:], "personal")
    assert short.verdict == "stop"


def test_checker_never_logs_the_draft(checker, caplog):
    secret = "Patient J.S. on Ward 7 NHS 943 476 5919"
    with caplog.at_level("DEBUG"):
        checker.check(secret, "personal")
    assert "943 476 5919" not in caplog.text and "J.S." not in caplog.text


# --- rule files ---------------------------------------------------------------------

def _rules_copy(tmp_path, mutate, name="safety.yaml"):
    import shutil
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "knowledge" / "rules", rules)
    path = rules / name
    data = yaml.safe_load(path.read_text())
    mutate(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return rules, path


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["rules"][0].update(category="nope"), r"rule 'sms-method': category 'nope' is not in categories\.yaml"),
    (lambda d: d["rules"][0].update(find=["(unclosed"]), r"rule 'sms-method': pattern '\(unclosed' is not a valid regular expression"),
    (lambda d: d["rules"][0].update(find=["{no_such_group}"]), r"rule 'sms-method': unknown lexicon group \{no_such_group\}"),
    (lambda d: d["rules"][0].update(cites=["bsmhft 99"]), r"rule 'sms-method': citation 'bsmhft 99' is not in sections\.yaml"),
    (lambda d: d["rules"][0].update(severity="maybe"), r"rule 'sms-method': severity must be one of stop, revise"),
    (lambda d: d["rules"][0].update(accounts=["myspace"]), r"rule 'sms-method': unknown account\(s\) myspace"),
    (lambda d: d["rules"][0].pop("message"), r"rule 'sms-method': missing 'message'"),
    (lambda d: d["rules"][0].update(detecter="phone"), r"rule 'sms-method': unknown field\(s\) detecter"),
    (lambda d: d["rules"][1].update(id="sms-method"), r"rule 'sms-method': duplicate id"),
    (lambda d: d["rules"][0].update(fix={"replace": 3}), r"rule 'sms-method': fix replace must be text"),
])
def test_bad_rule_file_names_file_rule_and_reason(tmp_path, mutate, message):
    rules, path = _rules_copy(tmp_path, mutate)
    with pytest.raises(RuleError, match=message) as err:
        load_ruleset(rules_dir=rules)
    assert str(path) in str(err.value)


def test_trust_can_disable_add_terms_and_allow(tmp_path, core):
    from knowledge.checker import Checker
    local = tmp_path / "local.yaml"
    local.write_text(yaml.safe_dump({"disable": ["stig-terms"], "terms": {"care_place": ["Larch Lodge"],
                                     "obscenity": ["frick"]}, "allow": ["Bay 3 Cafe"]}))
    ck = Checker(load_ruleset(local), "mine", "help")
    assert ck.check("what a frick of a day", "personal").verdict == "stop"
    assert ck.check("completely schizo today", "personal").verdict == "ok"
    assert ck.check("the lad at Larch Lodge thinks he's Elvis 😂", "personal").verdict == "stop"
    assert ck.check("the lad at Larch Lodge thinks he's Elvis 😂", "personal").verdict == "stop"
    assert core.check.checker.check("Meet us at the Bay 3 Cafe he loves", "personal").verdict == "ok"


def test_trust_file_with_unknown_rule_fails(tmp_path):
    local = tmp_path / "local.yaml"
    local.write_text("disable: [no-such-rule]\n")
    with pytest.raises(RuleError, match=r"local\.yaml: cannot disable unknown rule\(s\) no-such-rule"):
        load_ruleset(local)


def test_normalise_keeps_offsets_aligned():
    n = normalise("Ｈｉ\u200b  there\tｆｒｉｅｎｄ")
    assert n.text == "hi there friend" and len(n.offsets) == len(n.text) == len(n.cased)
    a, b = n.span(9, 15)
    assert n.original[a:b] == "ｆｒｉｅｎｄ"
