"""App wiring: load the configuration and knowledge once, build the shared core."""
from __future__ import annotations

from dataclasses import dataclass

from handlers.ask import AskHandler
from handlers.check import CheckHandler, helpline_line
from handlers.conversation import Conversation
from handlers.trust import TrustProfile
from knowledge import KnowledgeBase
from knowledge.checker import Checker, load_ruleset

from .config import AppConfig, load_config


@dataclass
class Core:
    """Everything platform-neutral the surfaces share."""
    config: AppConfig
    kb: KnowledgeBase
    ask: AskHandler
    check: CheckHandler
    conversation: Conversation


def trust_terms(trust: TrustProfile) -> dict[str, list[str]]:
    """The deployment's own names, so rules about 'the trust' recognise this trust by name."""
    names = {trust.name, trust.short_name}
    handles = {c.contact.split()[0] for c in trust.approved_channels if c.contact.startswith("@")}
    return {"trust_ref": sorted(names | handles),
            "logo": sorted(f"{n} logo" for n in names | {h.lstrip("@") for h in handles})}


def build_checker(config: AppConfig) -> Checker:
    ruleset = load_ruleset(config.local_rules, extra_terms=trust_terms(config.trust))
    return Checker(ruleset, disclaimer=config.trust.disclaimer, helpline=helpline_line(config.trust))


def build_core(config: AppConfig | str | None = None) -> Core:
    config = config if isinstance(config, AppConfig) else load_config(config)
    kb = KnowledgeBase.load(config.packs)
    ask = AskHandler(kb, config.trust)
    check = CheckHandler(build_checker(config), config.trust)
    return Core(config=config, kb=kb, ask=ask, check=check, conversation=Conversation(config.trust, ask, check))
