"""Policy packs: complete against sections.yaml, and a bad pack fails with file, clause and reason."""
from __future__ import annotations

import re

import pytest
import yaml

from knowledge.packs import PackError, load_pack, load_packs, load_sections

from .conftest import ROOT, SHARED

ALL = ["bsmhft", "hpft", "atb", "herts", "betton"]


def test_every_canonical_section_has_clauses():
    sections = load_sections()
    packs = load_packs(ALL)
    for pack in packs:
        have = {c.section for c in pack.clauses}
        assert set(sections[pack.source]["sections"]) <= have, pack.source


def test_packs_carry_document_metadata():
    for pack in load_packs(ALL):
        assert pack.title and pack.version and pack.contact.get("name"), pack.source
        for clause in pack.clauses:
            assert clause.title and clause.text and clause.summary, clause.id


# The source .txt files are conversions of the policy PDFs/Word files. What they add that is not the
# policy's words: HTML table cells (<p>, <ul>, <li>...), markdown bold (**...**), markdown autolinks
# (<https://...>) and, in places, lost or extra spaces ("Framework(which", "Practicehere"). Quotes are
# compared with all of that removed and nothing else: punctuation, spelling and word order must match.
_MARKUP = re.compile(r"</?(?:p|i|b|u|ul|ol|li|br)\b[^>]*>|\*\*|<(?=https?://)|(?<=\S)>(?=\s|$)")


def _norm(text: str) -> str:
    return re.sub(r"\s+", "", _MARKUP.sub(" ", text))


# Clauses whose clean text cannot be a single substring of the source, because the conversion put
# debris inside a sentence. Each entry is a line of the clause and the source fragments it joins, in
# order; the test checks both that the line is the fragments joined and that each fragment is in the
# source, so only the named junk is skipped.
_SPLIT_IN_SOURCE = {
    # The responsibilities table breaks across a page: the sentence stops after "partner agencies",
    # the table header "Post(s) Responsibilities Ref" is repeated, and it resumes "to identify...".
    "bsmhft-4-comms-team": [(
        "To work with teams and individuals across the Trust and partner agencies to identify and promote positive social media stories.",
        ("To work with teams and individuals across the Trust and partner agencies",
         "to identify and promote positive social media stories."),
    )],
}

# Extraction debris that must never reach a quote.
_DEBRIS = [
    (re.compile(r"\.{3,}|\u2026"), "a run of dots (table debris such as 'we are... you feel...')"),
    (re.compile(r"(?:^|\s)-{2,}(?=\s|$)"), "an empty table cell ('--')"),
    (re.compile(r"</?[a-z]+\b[^>]*>"), "an HTML tag"),
    (re.compile(r"\*\*"), "markdown bold markers"),
    (re.compile(r"\t"), "a tab (table column separator)"),
    (re.compile(r"[\u2714\u2713\u2022\uf0b7\ufffd]"), "a table tick, stray bullet glyph or replacement character"),
    (re.compile(r"\s[,.;:](?=\s|$)"), "punctuation adrift from its word"),
    (re.compile(r"\b(?:we are|you feel)\b\W*$"), "a dangling table heading ('we are', 'you feel')"),
]


def _debris(text: str) -> list[str]:
    return [why for pat, why in _DEBRIS for line in text.splitlines() if pat.search(line)]


def _source_text(pack) -> str:
    return (SHARED / "policies" / pack.document).read_text(encoding="utf-8")


def _quoted_lines(clause):
    """Each line of a clause's text as the fragments that must appear in the source, in order."""
    splits = dict(_SPLIT_IN_SOURCE.get(clause.id, []))
    for line, fragments in splits.items():
        assert line == " ".join(fragments), f"{clause.id}: an allowed split must only join source fragments"
    for line in clause.text.splitlines():
        yield line, splits.pop(line, (line,))
    assert not splits, f"{clause.id}: _SPLIT_IN_SOURCE lists a line the clause no longer has: {list(splits)}"


def test_clause_text_is_quoted_from_the_source_document():
    """Quotes must be the policy's words: every line of every clause's text is a verbatim substring of
    its source document (ignoring only whitespace and conversion markup), and the lines come in the
    document's order, so a quote can leave debris out but never reword, reorder or add."""
    if not (SHARED / "policies").exists():
        pytest.skip("../shared is not present")
    problems = []
    for pack in load_packs(ALL):
        source = _norm(_source_text(pack))
        for clause in pack.clauses:
            at = 0
            for line, fragments in _quoted_lines(clause):
                for fragment in fragments:
                    frag = _norm(fragment)
                    found = source.find(frag, at)
                    if not frag or found < 0:
                        where = "not in the source" if frag not in source else "out of the source's order"
                        problems.append(f"{clause.id}: {where}: {fragment[:90]!r}")
                        continue
                    at = found + len(frag)
    assert not problems, "\n".join(problems)


def test_unsplit_clauses_are_one_passage_of_the_source():
    """Apart from the clauses allowed above, a clause quotes one unbroken passage, and so cannot have
    dropped words from the middle of it."""
    if not (SHARED / "policies").exists():
        pytest.skip("../shared is not present")
    # hpft 9 quotes a two-column table row whose empty trailing row ("--  --") is dropped.
    allowed_gaps = set(_SPLIT_IN_SOURCE) | {"hpft-9-equality"}
    problems = []
    for pack in load_packs(ALL):
        source = _norm(_source_text(pack))
        problems += [c.id for c in pack.clauses if c.id not in allowed_gaps and _norm(c.text) not in source]
    assert not problems, problems


def test_clause_text_has_no_extraction_debris():
    problems = [f"{c.id}: {why}" for pack in load_packs(ALL) for c in pack.clauses for why in _debris(c.text)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("text", [
    "However, there is no guarantee that this will be possible. we are... you feel...",
    "thereby supporting equality of access to this information. -- --",
    "<p>To manage all social media</p>",
    "- **Inactivity** \u2013 e.g. no original posts",
    "Our Values\tWelcoming\t\u2714 Valued as an individual",
    "However, there is no guarantee that this will be possible. we are",
])
def test_debris_check_catches_known_extraction_junk(text):
    assert _debris(text)


@pytest.mark.parametrize("text", [
    "Don't pick fights, be the first to correct your own mistakes.",
    "- Hertfordshire teenage boys (13 -19)",
    "Requests for information made via Twitter\\X or other online channels",
    "How? It's really easy:",
])
def test_debris_check_passes_clean_policy_text(text):
    assert not _debris(text)


def test_every_clause_has_staff_phrasings():
    """Search meets staff's own words through also_answers: enough of them, none repeated."""
    for pack in load_packs(ALL):
        for clause in pack.clauses:
            phrasings = [a.lower() for a in clause.also_answers]
            assert len(set(phrasings)) >= 6, (clause.id, len(set(phrasings)))
            assert len(phrasings) == len(set(phrasings)), (clause.id, "repeated phrasing")


def test_sections_file_matches_the_canonical_copy():
    if not (SHARED / "policies" / "sections.yaml").exists():
        pytest.skip("../shared is not present")
    ours = yaml.safe_load((ROOT / "knowledge" / "sections.yaml").read_text())
    theirs = yaml.safe_load((SHARED / "policies" / "sections.yaml").read_text())
    assert ours == theirs


def _break(packs_copy, source, mutate):
    path = packs_copy / "packs" / f"{source}.yaml"
    data = yaml.safe_load(path.read_text())
    mutate(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["clauses"][0].update(section="9.99"), r"clause 'bsmhft-1\.1-purpose': section '9\.99' is not in sections\.yaml"),
    (lambda d: d["clauses"][1].pop("text"), r"clause 'bsmhft-1\.1-aims': missing or empty 'text'"),
    (lambda d: d["clauses"][2].update(also_answer=["x"]), r"clause 'bsmhft-1\.2-who': unknown field\(s\) also_answer"),
    (lambda d: d["clauses"][3].update(id=d["clauses"][0]["id"]), r"clause 'bsmhft-1\.1-purpose': duplicate id"),
    (lambda d: d["clauses"][0].update(id="hpft-1.1-purpose"), r"id must start with the pack's source 'bsmhft-'"),
    (lambda d: d["clauses"][0].update(also_answers="friend request"), r"also_answers must be a list"),
    (lambda d: d.update(clauses=[c for c in d["clauses"] if c["section"] != "3.10"]), r"no clause for section\(s\) 3\.10"),
    (lambda d: d.pop("version"), r"missing or empty 'version'"),
    (lambda d: d.update(source="nope"), r"source 'nope' is not in sections\.yaml"),
])
def test_bad_pack_names_file_clause_and_problem(packs_copy, mutate, message):
    path = _break(packs_copy, "bsmhft", mutate)
    with pytest.raises(PackError, match=message) as err:
        load_packs(["bsmhft"], packs_dir=packs_copy / "packs", sections_file=packs_copy / "sections.yaml")
    assert str(path) in str(err.value)


def test_unparseable_yaml_names_the_line(packs_copy):
    path = packs_copy / "packs" / "atb.yaml"
    path.write_text("source: atb\nclauses: [\n  - id: x\n")
    with pytest.raises(PackError, match=r"atb\.yaml: line \d+ is not valid YAML"):
        load_pack(path, load_sections())


def test_unknown_pack_in_config_fails(packs_copy):
    with pytest.raises(PackError, match=r"nosuch\.yaml: file not found"):
        load_packs(["nosuch"], packs_dir=packs_copy / "packs")


def test_cli_reports_a_bad_pack_in_one_line(tmp_path, capsys):
    from bot.cli import main
    cfg = tmp_path / "app.yaml"
    raw = yaml.safe_load((ROOT / "app.yaml").read_text())
    raw["packs"] = ["bsmhft", "missing-pack"]
    raw.pop("checker", None)
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["--config", str(cfg), "ask", "anything"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("policybot: ") and "missing-pack.yaml" in err and "\n" not in err
