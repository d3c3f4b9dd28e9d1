"""The platform-neutral reply: what the bot says, as blocks each surface renders its own way.

All text here is plain text. Console, Slack and Teams renderers escape it for their
own markup, so a draft containing `<!channel>` or `**` can never ping anyone or break
formatting, and the same conversation carries the same content on every surface.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Heading:
    """A heading. With `item` > 0 it and the `item` blocks after it are one item of a list (a
    finding), which a surface short of room summarises as a whole rather than cut in half."""
    text: str
    item: int = 0


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Notice:
    """A line that must stand out: level is info, warning or danger."""
    text: str
    level: str = "info"


@dataclass(frozen=True)
class Quote:
    """Policy text quoted verbatim, with where it comes from."""
    text: str
    citation: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Copyable:
    """Text the user is meant to copy as-is (a safer version of a draft, a redirect message)."""
    text: str
    label: str = ""


@dataclass(frozen=True)
class Button:
    label: str
    action: str
    value: str = ""
    style: str = ""    # "primary", "danger" or ""
    confirm: str = ""  # if set, the surface asks the user this before acting (e.g. before sending a draft on)


@dataclass(frozen=True)
class Actions:
    buttons: tuple[Button, ...]


Block = Heading | Text | Notice | Quote | Bullets | Copyable | Actions


@dataclass
class Reply:
    """One message from the bot. `kind` says what it is; `data` is its structured form (JSON output)."""
    kind: str
    blocks: list[Block] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    private: bool = False  # must only be shown to the person who asked (drafts may hold patient details)

    @property
    def buttons(self) -> list[Button]:
        return [b for blk in self.blocks if isinstance(blk, Actions) for b in blk.buttons]

    def plain_text(self) -> str:
        """A readable plain-text fallback (notifications, logs of *bot* text, the console)."""
        return render_text(self)

    def alerts(self) -> list[Block]:
        """Newly raised risk information (notices and crisis lines), which surfaces keep on show
        after a form or card moves on; empty unless the reply says it raised an alert."""
        if not self.data.get("alert"):
            return []
        return [b for b in self.blocks if isinstance(b, (Notice, Bullets))]


def render_text(reply: Reply, width: int = 0, number_from: int = 0) -> str:
    """Render a reply as plain text for the console and for platform fallbacks. With `number_from`, buttons
    are numbered from it ("[1] Helpful") so a terminal user can press one by typing its number."""
    out: list[str] = []
    n = number_from
    for blk in reply.blocks:
        if isinstance(blk, Heading):
            out.append(blk.text.upper() if width else blk.text)
        elif isinstance(blk, Text):
            out.append(blk.text)
        elif isinstance(blk, Notice):
            mark = {"danger": "!!", "warning": "!"}.get(blk.level, "i")
            out.append(f"[{mark}] {blk.text}")
        elif isinstance(blk, Quote):
            body = "\n".join(f"  > {line}" for line in blk.text.splitlines())
            out.append(f"{body}\n    ({blk.citation})")
        elif isinstance(blk, Bullets):
            out.append("\n".join(f"  - {item}" for item in blk.items))
        elif isinstance(blk, Copyable):
            label = f"{blk.label}:\n" if blk.label else ""
            out.append(label + "\n".join(f"  | {line}" for line in blk.text.splitlines()))
        elif isinstance(blk, Actions):
            if number_from:
                labels = [f"[{n + i}] {b.label}" for i, b in enumerate(blk.buttons)]
                n += len(blk.buttons)
            else:
                labels = [f"[{b.label}]" for b in blk.buttons]
            out.append("  ".join(labels))
    return "\n\n".join(out)
