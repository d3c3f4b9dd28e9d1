"""App wiring: load the configuration and knowledge once, build the shared core."""
from __future__ import annotations

from dataclasses import dataclass

from handlers.ask import AskHandler
from handlers.conversation import Conversation
from knowledge import KnowledgeBase

from .config import AppConfig, load_config


@dataclass
class Core:
    """Everything platform-neutral the surfaces share."""
    config: AppConfig
    kb: KnowledgeBase
    ask: AskHandler
    conversation: Conversation


def build_core(config: AppConfig | str | None = None) -> Core:
    config = config if isinstance(config, AppConfig) else load_config(config)
    kb = KnowledgeBase.load(config.packs)
    ask = AskHandler(kb, config.trust)
    return Core(config=config, kb=kb, ask=ask, conversation=Conversation(config.trust, ask))
