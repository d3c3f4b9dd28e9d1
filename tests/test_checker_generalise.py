"""Rules that generalise where rules are the right tool: identifiers by code, names from a gazetteer,
look-alike letters from Unicode's confusables data, and every adversarial draft a defined answer."""
from __future__ import annotations

import pytest

from benchmarks.adversarial import adversarial


def findings(core, text, account="personal"):
    r = core.check.check(text, account)
    return r.verdict, {(f.category, f.quote) for f in r.findings}


@pytest.mark.parametrize("text, category, quote", [
    ("email me at sam.jones@nhs.net if you want to chat about the ward", "personal-safety", "sam.jones@nhs.net"),
    ("Her email is jo.b@example.com if anyone wants to give her a piece of their mind",
     "confidential-information", "jo.b@example.com"),
    ("Just moved into our new house in B13 9QT, housewarming saturday!", "personal-safety", "B13 9QT"),
    ("The lad we discharged yesterday lives in B29 6JD, hope he's ok", "patient-identifiable", "B29 6JD"),
])
def test_emails_and_postcodes_are_reported_with_their_own_words(core, text, category, quote):
    verdict, found = findings(core, text)
    assert (category, quote) in found


def test_a_phone_number_beside_an_nhs_number_is_quoted_itself(core):
    verdict, found = findings(core, "Does anyone know the family of NHS no 943 476 5919? ring me on 07700 900123")
    assert verdict == "stop"
    assert ("patient-identifiable", "943 476 5919") in found
    assert ("personal-safety", "07700 900123") in found


def test_the_trusts_own_contact_address_is_not_a_finding(core):
    assert findings(core, "Press enquiries go to bsmhft.commsteam@nhs.net", "official") == ("ok", set())


@pytest.mark.parametrize("text, quote", [
    ("Kevin was admitted overnight, he's back on close obs", "Kevin"),
    ("Tyler kicked off again tonight, took four of us to restrain him", "Tyler"),
    ("DW (72) finally discharged today after 9 months on the unit", "DW (72)"),
])
def test_a_named_person_with_care_details_is_patient_identifiable(core, text, quote):
    verdict, found = findings(core, text)
    assert verdict == "stop" and ("patient-identifiable", quote) in found


@pytest.mark.parametrize("text", [
    "Huge congratulations to Sarah on our ward for winning nurse of the year!",
    "Grace was such a help to the team this week, thank you!",
    "Will anyone be at the depot injection training on Tuesday?",
])
def test_colleagues_and_ordinary_words_are_not_patients(core, text):
    """The gazetteer's job: a first name beside praise, or 'Will' as a verb, is no patient. (The semantic
    tier reads the meaning separately and can still be wrong; its false alarms are measured, not pinned.)"""
    r = core.check.check(text, "personal")
    assert not any(f.category == "patient-identifiable" for f in r.findings if not f.semantic)


@pytest.mark.parametrize("word", ["psychօ", "рsусhо", "ΡSΥCΗΟ"])  # Armenian o; Cyrillic; Greek capitals
def test_look_alike_letters_from_any_script_are_read_as_latin(core, word):
    verdict, found = findings(core, f"the new manager is a total {word}")
    assert ("stigmatising-language", word) in found


@pytest.mark.parametrize("name, text", sorted(adversarial(40_000).items()))
def test_every_adversarial_draft_at_the_cap_gets_a_defined_answer(core, name, text):
    r = core.check.check(text + "x" * 10, "personal")
    assert r.verdict in ("ok", "revise", "stop")
    assert r.truncated and r.checked_chars == 40_000
    for f in r.findings:
        assert 0 <= f.start < f.end <= 40_000 and f.quote == text[f.start:f.end]
