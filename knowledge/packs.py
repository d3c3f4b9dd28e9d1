"""Policy packs: each policy document as YAML data, loaded and validated at start-up.

A bad pack must stop the bot before it answers anyone, with a message that names
the file, the clause and what is wrong, so whoever edits a pack can fix it.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

try:  # libyaml is several times faster; cold start matters for the CLI
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pure-Python fallback
    _Loader = yaml.SafeLoader

KNOWLEDGE_DIR = Path(__file__).resolve().parent
PACKS_DIR = KNOWLEDGE_DIR / "packs"
SECTIONS_FILE = KNOWLEDGE_DIR / "sections.yaml"

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")
_PACK_KEYS = {"source", "title", "organisation", "short_name", "reference", "version", "dates",
              "contact", "names", "document", "clauses"}
_PACK_REQUIRED = ("source", "title", "short_name", "version", "contact", "clauses")
_CLAUSE_KEYS = {"id", "section", "title", "summary", "text", "also_answers"}
_CLAUSE_REQUIRED = ("id", "section", "title", "text")


class PackError(ValueError):
    """A policy pack (or sections.yaml) that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Clause:
    id: str
    source: str
    section: str
    title: str
    text: str
    summary: str = ""
    also_answers: tuple[str, ...] = ()

    @property
    def citation(self) -> str:
        """The canonical citation id, e.g. ``bsmhft 3.2.1.unsolicited``."""
        return f"{self.source} {self.section}"


@dataclass(frozen=True)
class Pack:
    source: str
    title: str
    short_name: str
    version: str
    contact: dict
    clauses: tuple[Clause, ...]
    organisation: str = ""
    reference: str = ""
    dates: dict = field(default_factory=dict)
    names: tuple[str, ...] = ()
    document: str = ""
    path: str = ""


def read_yaml(path: Path, error=PackError):
    """Parse one YAML file, turning parse errors into `error` naming the file and line."""
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_Loader)
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise error(f"{path}:{where} is not valid YAML: {getattr(exc, 'problem', exc)}") from None


def load_sections(path: Path = SECTIONS_FILE) -> dict[str, dict]:
    """The canonical citation ids: {source: {"title": ..., "sections": {id: title}}}."""
    data = read_yaml(path)
    sources = (data or {}).get("sources") if isinstance(data, dict) else None
    if not isinstance(sources, dict) or not sources:
        raise PackError(f"{path}: expected a 'sources' mapping")
    out = {}
    for src, meta in sources.items():
        secs = (meta or {}).get("sections")
        if not isinstance(secs, dict) or not secs:
            raise PackError(f"{path}: source {src!r} has no sections")
        out[str(src)] = {"title": str(meta.get("title", src)), "sections": {str(k): str(v) for k, v in secs.items()}}
    return out


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def _load_clause(raw, where: str, source: str, sections: dict[str, str]) -> Clause:
    if not isinstance(raw, dict):
        raise PackError(f"{where}: each clause must be a mapping, got {type(raw).__name__}")
    cid = raw.get("id")
    if cid:
        where = f"{where.rsplit(': clause #', 1)[0]}: clause {cid!r}"
    unknown = sorted(set(raw) - _CLAUSE_KEYS)
    if unknown:
        raise PackError(f"{where}: unknown field(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_CLAUSE_KEYS))})")
    for key in _CLAUSE_REQUIRED:
        if not _text(raw.get(key) if key != "section" else str(raw.get(key) or "")):
            raise PackError(f"{where}: missing or empty '{key}'")
    if not isinstance(cid, str) or not _ID.match(cid):
        raise PackError(f"{where}: id must be letters, digits, '.' and '-'")
    if not cid.startswith(source + "-"):
        raise PackError(f"{where}: id must start with the pack's source '{source}-'")
    section = str(raw["section"])
    if section not in sections:
        raise PackError(f"{where}: section {section!r} is not in sections.yaml for source {source!r}")
    also = raw.get("also_answers") or []
    if not isinstance(also, list) or not all(isinstance(a, str) and a.strip() for a in also):
        raise PackError(f"{where}: also_answers must be a list of non-empty strings")
    summary = raw.get("summary", "")
    if summary is not None and not isinstance(summary, str):
        raise PackError(f"{where}: summary must be text")
    return Clause(id=cid, source=source, section=section, title=_text(raw["title"]), text=_text(raw["text"]),
                  summary=_text(summary), also_answers=tuple(a.strip() for a in also))


def load_pack(path: Path, sections: dict[str, dict]) -> Pack:
    """Load and validate one pack file against the canonical sections."""
    path = Path(path)
    raw = read_yaml(path)
    where = str(path)
    if not isinstance(raw, dict):
        raise PackError(f"{where}: a pack must be a mapping with 'source' and 'clauses'")
    unknown = sorted(set(raw) - _PACK_KEYS)
    if unknown:
        raise PackError(f"{where}: unknown field(s) {', '.join(unknown)}")
    for key in _PACK_REQUIRED:
        if not raw.get(key):
            raise PackError(f"{where}: missing or empty '{key}'")
    source = str(raw["source"])
    if source not in sections:
        raise PackError(f"{where}: source {source!r} is not in sections.yaml (known: {', '.join(sections)})")
    contact = raw["contact"]
    if not isinstance(contact, dict) or not contact.get("name"):
        raise PackError(f"{where}: contact must be a mapping with at least a 'name'")
    if not isinstance(raw["clauses"], list):
        raise PackError(f"{where}: clauses must be a list")
    known = sections[source]["sections"]
    clauses, seen = [], set()
    for i, item in enumerate(raw["clauses"], 1):
        clause = _load_clause(item, f"{where}: clause #{i}", source, known)
        if clause.id in seen:
            raise PackError(f"{where}: clause {clause.id!r}: duplicate id")
        seen.add(clause.id)
        clauses.append(clause)
    missing = [s for s in known if not any(c.section == s for c in clauses)]
    if missing:
        raise PackError(f"{where}: no clause for section(s) {', '.join(missing)} of sections.yaml")
    dates = raw.get("dates") or {}
    if not isinstance(dates, dict):
        raise PackError(f"{where}: dates must be a mapping")
    names = raw.get("names") or []
    if not isinstance(names, list):
        raise PackError(f"{where}: names must be a list")
    return Pack(source=source, title=_text(raw["title"]), short_name=_text(raw["short_name"]),
                version=str(raw["version"]), contact={str(k): str(v) for k, v in contact.items()},
                clauses=tuple(clauses), organisation=_text(raw.get("organisation")),
                reference=str(raw.get("reference") or ""), document=str(raw.get("document") or ""), path=where,
                dates={str(k): v.isoformat() if isinstance(v, _dt.date) else str(v) for k, v in dates.items()},
                names=tuple(str(n).lower() for n in names))


def load_packs(sources: list[str], packs_dir: Path = PACKS_DIR, sections_file: Path = SECTIONS_FILE) -> list[Pack]:
    """Load the active packs, in the order given (primary first)."""
    if not sources:
        raise PackError("no policy packs are active: list at least one under 'packs' in app.yaml")
    sections = load_sections(sections_file)
    packs, ids = [], {}
    for source in sources:
        pack = load_pack(Path(packs_dir) / f"{source}.yaml", sections)
        if pack.source != source:
            raise PackError(f"{pack.path}: file is for source {source!r} but says source {pack.source!r}")
        for clause in pack.clauses:
            if clause.id in ids:
                raise PackError(f"{pack.path}: clause {clause.id!r}: id also used in {ids[clause.id]}")
            ids[clause.id] = pack.path
        packs.append(pack)
    return packs
