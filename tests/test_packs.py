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


def test_clause_text_is_quoted_from_the_source_document():
    """Quotes must be the policy's words: each clause's text appears in the source file."""
    if not (SHARED / "policies").exists():
        pytest.skip("../shared is not present")
    squash = lambda s: re.sub(r"[^a-z0-9]+", "", s.lower())
    for pack in load_packs(ALL):
        source = squash(re.sub(r"</?(p|i|b|ul|li)\b[^>]*>", " ", (SHARED / "policies" / pack.document).read_text()))
        for clause in pack.clauses:
            for line in clause.text.splitlines():
                words = squash(line.lstrip("- 0123456789."))
                assert words[:60] in source, (clause.id, line[:80])


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
