"""App wiring: load the configuration and knowledge once, build the shared core."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from handlers.ask import AskHandler
from handlers.check import CheckHandler, helpline_line
from handlers.conversation import Conversation
from handlers.escalation import EscalationService
from handlers.report_contact import ReportContactFlow
from handlers.store import Store
from handlers.triage import Triage
from handlers.trust import TrustProfile
from handlers.worker import Worker
from knowledge import KnowledgeBase
from knowledge.checker import Checker, load_ruleset
from knowledge.checker.semantic import shared_semantic_tier

from .config import AppConfig, load_config


@dataclass
class Core:
    """Everything platform-neutral the surfaces share."""
    config: AppConfig
    kb: KnowledgeBase
    ask: AskHandler
    check: CheckHandler
    conversation: Conversation
    store: Store | None = None
    escalations: EscalationService | None = None
    report: ReportContactFlow | None = None
    worker: Worker = field(default_factory=Worker)  # checks and searches, off the server's event loop

    def close(self) -> None:
        self.worker.close()


def trust_terms(trust: TrustProfile) -> dict[str, list[str]]:
    """The deployment's own names, so rules about 'the trust' recognise this trust by name."""
    names = {trust.name, trust.short_name}
    handles = {c.contact.split()[0] for c in trust.approved_channels if c.contact.startswith("@")}
    return {"trust_ref": sorted(names | handles),
            "logo": sorted(f"{n} logo" for n in names | {h.lstrip("@") for h in handles})}


def build_checker(config: AppConfig) -> Checker:
    """Rules plus the semantic tier (`checker.semantic: false` in app.yaml turns the tier off)."""
    ruleset = load_ruleset(config.local_rules, extra_terms=trust_terms(config.trust))
    settings = config.raw.get("checker") or {}
    semantic = shared_semantic_tier() if settings.get("semantic", True) else None
    return Checker(ruleset, disclaimer=config.trust.disclaimer, helpline=helpline_line(config.trust), semantic=semantic)


@dataclass
class Asker:
    """Just what `policybot ask` needs: the knowledge base and the answering handler."""
    config: AppConfig
    kb: KnowledgeBase
    ask: AskHandler


def build_asker(config: AppConfig | str | None = None) -> Asker:
    config = config if isinstance(config, AppConfig) else load_config(config)
    kb = KnowledgeBase.load(config.packs)
    return Asker(config=config, kb=kb, ask=AskHandler(kb, config.trust))


def _store_unanswered(config: AppConfig) -> bool:
    return bool((config.raw.get("feedback") or {}).get("store_unanswered", True))


def build_core(config: AppConfig | str | None = None, *, storage: bool = True, store: Store | None = None,
               clock=None) -> Core:
    """The shared core. With storage, the database is opened (SQLite created 0600 if new, or PostgreSQL
    when a database URL is configured) unless a store is given;
    `policybot ask` and `check` need none, so they start fast and write nothing."""
    config = config if isinstance(config, AppConfig) else load_config(config)
    kb = KnowledgeBase.load(config.packs)
    ask = AskHandler(kb, config.trust)
    check = CheckHandler(build_checker(config), config.trust)
    if not storage and store is None:
        return Core(config=config, kb=kb, ask=ask, check=check, conversation=Conversation(config.trust, ask, check))
    if store is None:
        from .storage import open_store
        store = open_store(config)
    escalations = EscalationService(store, routes=config.escalation_routes,
                                    lease=dt.timedelta(seconds=config.escalation_lease))
    report = ReportContactFlow(store, Triage.load(config.trust), escalations, config.trust, clock=clock)
    return Core(config=config, kb=kb, ask=ask, check=check, store=store, escalations=escalations, report=report,
                conversation=Conversation(config.trust, ask, check, report, store,
                                          record_unanswered=_store_unanswered(config)))
