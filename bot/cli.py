"""The `policybot` command line: chat, ask, check, incidents, escalations.

Start-up problems (a bad pack, a bad app.yaml, a database that cannot be reached) print
one line naming the file or what failed, and exit 2, rather than a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import TextIO

from handlers.store import StoreUnavailable
from handlers.untrusted import scrub_deep, scrub_surrogates, terminal_safe
from knowledge.packs import PackError

from .config import ConfigError


def _core(args, storage: bool = False):
    from .app import build_core
    return build_core(args.config, storage=storage)


# Characters some readers take for a line break (U+0085, U+2028, U+2029) or a terminal takes for a
# command (C1 controls): escaped, so each answer is one line whatever splits it.
_LINE_BREAKERS = re.compile("[\x7f-\x9f\u2028\u2029]")


def _emit(obj: dict, out: TextIO) -> None:
    """One JSON line, always valid UTF-8 JSON: no lone surrogates, no NaN, no line breaks but its own."""
    line = scrub_surrogates(json.dumps(obj, ensure_ascii=False, allow_nan=False))
    out.write(_LINE_BREAKERS.sub(lambda m: f"\\u{ord(m.group()):04x}", line) + "\n")


def _lines(stdin: TextIO):
    """Input lines as text. Bytes that are not UTF-8 become U+FFFD rather than ending the batch."""
    source = getattr(stdin, "buffer", None)
    for line in source if source is not None else stdin:
        if not isinstance(line, bytes):
            yield line, False
            continue
        try:
            yield line.decode("utf-8"), False
        except UnicodeDecodeError:
            yield line.decode("utf-8", "replace"), True


def _not_a_number(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:20]} is too large a number")
    return value


def _read_item(line: str, field: str) -> tuple[dict | None, str]:
    """The line as a JSON object with a text `field`, or None and what is wrong with it."""
    try:
        item = json.loads(line, parse_constant=_not_a_number, parse_float=_finite, strict=False)
    except RecursionError:
        return None, "not a JSON object: nested too deeply"
    except ValueError as exc:
        return None, f"not a JSON object: {exc}"[:200]
    if not isinstance(item, dict):
        return None, f"not a JSON object: got a JSON {type(item).__name__}"
    if not isinstance(item.get("id"), (str, int, float, bool, type(None))):
        return None, "'id' must be a string or a number"
    if not isinstance(item.get(field), str):
        return item, f"missing text field '{field}'"
    return item, ""


def jsonl(stdin: TextIO, stdout: TextIO, field: str, run) -> int:
    """Answer JSON Lines: one output line per input line, carrying its id; a bad line gets an error
    object ({"id", "line", "error"}) and the batch goes on. Text that cannot be UTF-8 (bytes that are
    not UTF-8, lone surrogates) is replaced with U+FFFD, and the answer says so."""
    for n, (line, bad_bytes) in enumerate(_lines(stdin), 1):
        if not line.strip():
            continue
        item, problem = _read_item(line, field)
        replaced = bad_bytes or (scrub_deep(item) > 0 if item is not None else False)
        key = (item or {}).get("id")
        if problem:
            _emit({"id": key, "line": n, "error": scrub_surrogates(problem)}, stdout)
            continue
        try:
            result = run(item)
        except Exception as exc:  # one line's failure must not cost the lines after it an answer
            _emit({"id": key, "line": n, "error": f"could not answer this line ({type(exc).__name__})"}, stdout)
            continue
        if replaced:
            result = {**result, "warning": "text that was not valid UTF-8 was replaced with U+FFFD"}
        _emit({"id": key, **result}, stdout)
        stdout.flush()
    return 0


def cmd_ask(args, stdin: TextIO, stdout: TextIO) -> int:
    from .app import build_asker
    core = build_asker(args.config)  # questions need no checker and no database: start fast
    if args.jsonl:
        return jsonl(stdin, stdout, "question", lambda item: core.ask.answer(item["question"]).data)
    question = " ".join(args.question) if args.question else ""
    if question == "-":
        question = stdin.read()
    if args.explain:
        stdout.write(explain_search(core, question))
        return 0
    reply = core.ask.answer(question)
    if args.json:
        _emit({"kind": reply.kind, **reply.data}, stdout)
    else:
        from handlers.replies import render_text
        stdout.write(terminal_safe(render_text(reply)) + "\n")
    return 0


def explain_search(core, question: str) -> str:
    """Why an answer was chosen: each retriever's top candidates with their scores, then the fused order."""
    result = core.ask.search(question)
    clauses = core.kb.index.clauses
    lines = [f"FTS5 (keywords): {'found' if result.lexical_found else 'not found'} on its own"]
    for h in result.lexical[:8]:
        lines.append(f"  {h.lexical:7.2f}  coverage {h.coverage:.2f}  {h.citation:<34} {h.clause.title}")
    if not result.lexical:
        lines.append("  (no clause shares a word with the question)")
    lines.append("Dense (meaning): best cosine of each clause's index texts")
    for d in result.dense[:8]:
        c = clauses[d.row]
        lines.append(f"  {d.score:7.3f}  {c.citation:<34} via: {d.via[:70]}")
    if core.kb.index.dense is None:
        lines.append("  (dense retrieval is off)")
    lines.append(f"Fused: {'FOUND' if result.found else 'NOT FOUND (the bot says it could not find this)'}")
    for h in result.hits:
        lines.append(f"  {h.score:7.3f}  {h.citation:<34} {h.clause.title}")
    return "\n".join(lines) + "\n"


def marked(text: str, findings) -> str:
    """The draft with the words each finding concerns marked >>like this<<."""
    spans = sorted((f.start, f.end) for f in findings)
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out, last = [], 0
    for a, b in merged:
        out += [text[last:a], ">>", text[a:b], "<<"]
        last = b
    out.append(text[last:])
    return "".join(out)


def cmd_check(args, stdin: TextIO, stdout: TextIO) -> int:
    core = _core(args)
    if args.jsonl:
        return jsonl(stdin, stdout, "text",
                     lambda item: core.check.check(item["text"], str(item.get("account") or args.account)).as_dict())
    text = " ".join(args.text) if args.text else ""
    if text == "-" or (not args.text and not stdin.isatty()):
        text = stdin.read()
    result = core.check.check(text, args.account)
    if args.json:
        _emit(result.as_dict(), stdout)
        return 0
    from handlers.replies import render_text
    if result.findings:
        checked = text[:result.checked_chars]
        stdout.write("Your draft, with the words that need attention marked >>like this<<:\n\n")
        stdout.write("  " + terminal_safe(marked(checked, result.findings)).replace("\n", "\n  ") + "\n\n")
    stdout.write(terminal_safe(render_text(core.check.render(result))) + "\n")
    return 0


def cmd_index(args, stdin: TextIO, stdout: TextIO) -> int:
    """Re-embed the packs' index texts into knowledge/embedding/clause_vectors.npz (after editing a pack)."""
    from knowledge import KnowledgeBase
    from knowledge.dense import CACHE_FILE
    from .config import load_config

    config = load_config(args.config)
    kb = KnowledgeBase.load(config.packs)
    kb.index.dense.save_cache()
    stdout.write(f"Wrote {len(kb.index.dense.texts)} index vectors for {len(kb.index.clauses)} clauses to {CACHE_FILE}\n")
    return 0


def cmd_chat(args, stdin: TextIO, stdout: TextIO) -> int:
    if args.jsonl:
        return chat_jsonl(args, stdin, stdout)
    from .console import run_console
    core = _core(args, storage=True)
    try:
        return run_console(core, stdin, stdout)
    finally:
        core.store.close()  # PostgreSQL: hand the connections back cleanly


def chat_jsonl(args, stdin: TextIO, stdout: TextIO) -> int:
    """One JSON line per message: what it was routed to, the verdict, citations and risk flags, so routing can be
    scored. Lines with the same "user" are one conversation; a line without one is a conversation of its own.
    Reports started here go to a throwaway database, never the incident log."""
    import tempfile
    from pathlib import Path
    from handlers.conversation import Incoming
    from .storage import SQLiteStore
    with tempfile.TemporaryDirectory(prefix="policybot-chat-") as tmp:
        from .app import build_core
        core = build_core(args.config, store=SQLiteStore(Path(tmp) / "chat.db"))
        lines = iter(range(1, 1 << 62))

        def run(item: dict) -> dict:
            user = str(item.get("user") or f"jsonl-line-{next(lines)}")
            return core.conversation.respond(Incoming("console", user, item["text"])).as_dict()
        return jsonl(stdin, stdout, "text", run)


def cmd_incidents(args, stdin: TextIO, stdout: TextIO) -> int:
    from . import incidents_cli
    core = _core(args, storage=True)
    try:
        return incidents_cli.run(core, args, stdin, stdout)
    except incidents_cli.UsageError as exc:
        print(f"policybot: {exc}", file=sys.stderr)
        return 2
    finally:
        core.store.close()


def cmd_serve(args, stdin: TextIO, stdout: TextIO) -> int:
    import asyncio
    import logging
    from . import logs
    from .server import serve
    level = os.environ.get("POLICYBOT_LOG_LEVEL", "INFO").strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"POLICYBOT_LOG_LEVEL: use DEBUG, INFO, WARNING or ERROR (got {level!r})")
    try:
        logs.configure(args.log_format, level)  # user text withheld from every record, at every level
    except ValueError as exc:  # a bad $POLICYBOT_LOG_FORMAT (argparse checks only the flag)
        print(f"policybot: {exc}", file=sys.stderr)
        return 2
    # The pool logs every failed reconnection attempt over several lines; ours log one line per outage.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    if args.worker:
        from .workers import die_with_parent
        die_with_parent()
    if args.workers < 1:
        print("policybot: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1:  # the first worker checks the configuration and the database before the others start
        from .workers import supervise, worker_command
        return supervise(args.workers, worker_command(args.config, args.host, args.port, args.log_format))
    core = _core(args, storage=True)
    if not (core.config.slack or core.config.teams):
        print("policybot: no chat platform is configured: add a 'slack' or 'teams' section to app.yaml", file=sys.stderr)
        return 2
    asyncio.run(serve(core, args.host, args.port, reuse_port=args.worker))
    return 0


def cmd_teams_package(args, stdin: TextIO, stdout: TextIO) -> int:
    from pathlib import Path
    from .teams.package import build_package
    try:
        out = build_package(args.app_id, Path(args.out), domain=args.domain)
    except ValueError as exc:
        print(f"policybot: {exc}", file=sys.stderr)
        return 2
    stdout.write(f"Wrote {out}: upload it in Teams (Apps > Manage your apps > Upload an app).\n")
    return 0


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r} (from --port or $PORT)")
    return port


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="policybot", description="Social media policy assistant for NHS trust staff.")
    p.add_argument("--config", help="path to app.yaml (default: $POLICYBOT_CONFIG or the project's app.yaml)")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("ask", help="answer a policy question from the policies, with citations")
    a.add_argument("question", nargs="*", help="the question ('-' reads it from stdin)")
    mode = a.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    mode.add_argument("--jsonl", action="store_true", help="read JSON Lines {id, question} on stdin, write one line each")
    mode.add_argument("--explain", action="store_true",
                      help="show each retriever's top candidates and scores, and why the answer was chosen")
    a.set_defaults(func=cmd_ask)

    k = sub.add_parser("check", help="check a draft post against the policy's rules")
    k.add_argument("text", nargs="*", help="the draft ('-' or no text reads it from stdin)")
    k.add_argument("--account", choices=("personal", "official", "unknown"), default="unknown",
                   help="the account the post is for (default: unknown, the stricter case)")
    kmode = k.add_mutually_exclusive_group()
    kmode.add_argument("--json", action="store_true", help="print the result as one JSON object")
    kmode.add_argument("--jsonl", action="store_true",
                       help="read JSON Lines {id, text, account} on stdin, write one line each")
    k.set_defaults(func=cmd_check)

    x = sub.add_parser("index", help="refresh the search index's cached vectors after editing a policy pack")
    x.set_defaults(func=cmd_index)

    c = sub.add_parser("chat", help="talk to the bot in this terminal (no Slack or Teams needed)")
    c.add_argument("--jsonl", action="store_true",
                   help="read JSON Lines {id, text, user?} on stdin, write one line each: kind, verdict, citations, risk flags")
    c.set_defaults(func=cmd_chat)

    v = sub.add_parser("serve", help="run the Slack and Teams apps (HTTP on --host/--port; Slack Socket Mode per app.yaml)")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    v.add_argument("--port", type=_port, default=os.environ.get("PORT") or "3000",
                   help="port to listen on (default $PORT, as App Service and most hosts set it, else 3000)")
    v.add_argument("--log-format", choices=("text", "json"), default=os.environ.get("POLICYBOT_LOG_FORMAT") or "text",
                   help="log lines as text or one JSON object each, e.g. for App Insights "
                        "(default $POLICYBOT_LOG_FORMAT, else text)")
    v.add_argument("--workers", type=int, default=1,
                   help="server processes sharing the port (default 1); all state is in the database")
    v.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one of --workers N
    v.set_defaults(func=cmd_serve)

    t = sub.add_parser("teams-package", help="build the Teams app zip for sideloading")
    t.add_argument("--app-id", required=True, help="the bot's Microsoft App ID (MicrosoftAppId)")
    t.add_argument("--domain", required=True,
                   help="your server's public host name, as in its messaging endpoint (e.g. policybot.example.nhs.uk)")
    t.add_argument("--out", default="build/policybot-teams.zip")
    t.set_defaults(func=cmd_teams_package)

    from .feedback_cli import add_parsers as add_feedback_parsers
    add_feedback_parsers(sub)

    from .incidents_cli import add_parsers
    before = set(sub.choices)
    add_parsers(sub)
    for name in set(sub.choices) - before:
        sub.choices[name].set_defaults(func=cmd_incidents)
    return p


def _utf8_streams(args) -> None:
    """JSON output is UTF-8 whatever the locale says; nothing unencodable ever ends the process."""
    json_out = getattr(args, "json", False) or getattr(args, "jsonl", False)
    try:
        if json_out:
            sys.stdout.reconfigure(encoding="utf-8", errors="replace")
        else:
            sys.stdout.reconfigure(errors="replace")
        sys.stdin.reconfigure(errors="replace")
    except (AttributeError, ValueError):  # not a real text stream (tests, embedding)
        pass


def main(argv: list[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    if stdin is None and stdout is None:
        _utf8_streams(args)
    try:
        return args.func(args, stdin or sys.stdin, stdout or sys.stdout)
    except (PackError, ConfigError, StoreUnavailable) as exc:
        print(f"policybot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. piped into `head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
