"""A normal (non-editable) install works from any directory: build the wheel, install it into a
fresh virtualenv, and run every command a deployment uses, from a folder that is not the repository.

Kept fast and offline: the wheel is built without build isolation (setuptools comes from the
test extra), and the fresh venv gets no pip and no copies of the dependencies; a .pth file lets
it import them from this test run's environment. That environment's own (editable) policybot
is not visible there: a .pth line adds a folder to sys.path but does not run the .pth files
inside it, so `bot` and `knowledge` can only come from the installed wheel, and the test
checks that they do.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.packaging  # runs in CI like every test; `-m "not packaging"` skips it locally
IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "data", "*.egg-info", "__pycache__", ".pytest_cache",
                                "*.db", "*.db-wal", "*.db-shm")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the wheel built from this checkout installed into it."""
    tmp = tmp_path_factory.mktemp("pkg")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=IGNORE)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(tmp / "dist"), str(src)], cwd=tmp)
    wheel = next((tmp / "dist").glob("policybot-*.whl"))
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    python = venv / "bin" / "python"
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp).strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "_policybot_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        cwd=tmp)
    home = tmp / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLICYBOT_", "SLACK_", "Microsoft", "PYTHON"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "share"))
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    return {"venv": venv, "python": python, "bin": venv / "bin", "env": env, "cwd": elsewhere, "wheel": wheel,
            "home": home, "purelib": Path(purelib)}


def run(cmd, cwd, env=None, stdin: str | None = None, ok: bool = True) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=300)
    if ok:
        assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def policybot(installed, *args, stdin: str | None = None) -> str:
    return run([str(installed["bin"] / "policybot"), *args], installed["cwd"], installed["env"], stdin)


def test_the_wheel_carries_the_config_and_both_manifests(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    assert {"bot/_assets/app.yaml", "bot/_assets/slack/manifest.yaml", "bot/_assets/teams/manifest.json",
            "bot/_assets/teams/color.png", "bot/_assets/teams/outline.png", "policybot/__main__.py"} <= names
    tracked = subprocess.run(["git", "ls-files", "bot", "handlers", "knowledge", "policybot"], cwd=ROOT,
                             capture_output=True, text=True)
    if tracked.returncode == 0:  # every file the code may read ships (documentation aside)
        left_out = [f for f in tracked.stdout.split() if f not in names and not f.endswith(".md")]
        assert left_out == [], "add these to [tool.setuptools.package-data] in pyproject.toml"
    where = run([str(installed["python"]), "-c", "import bot, knowledge; print(bot.__file__); print(knowledge.__file__)"],
                installed["cwd"], installed["env"])
    assert all(line.startswith(str(installed["purelib"])) for line in where.split())  # the wheel's copy, not ours


def test_ask_and_check_work_from_any_directory(installed):
    answer = json.loads(policybot(installed, "ask", "--json", "an ex-patient added me on Facebook, what do I do?"))
    assert answer["found"] and answer["answers"][0]["source"] == "bsmhft"
    checked = json.loads(policybot(installed, "check", "--json", "--account", "personal",
                                   "Off to the loony bin again, 6:40 bus from Acocks Green"))
    assert checked["verdict"] in ("revise", "stop") and checked["findings"]


def test_chat_keeps_its_database_private_in_the_users_data_folder(installed):
    out = policybot(installed, "chat", stdin="what's the samaritans number?\nquit\n")
    assert "116 123" in out
    db = installed["home"] / "share" / "policybot" / "policybot.db"
    assert db.exists() and stat.S_IMODE(db.stat().st_mode) == 0o600
    assert not list(installed["purelib"].rglob("*.db"))  # nothing written into site-packages


def test_teams_package_builds_from_the_installed_copy_with_python_dash_m(installed):
    out = installed["cwd"] / "teams.zip"
    run([str(installed["python"]), "-m", "policybot", "teams-package", "--app-id",
         "12345678-1234-1234-1234-123456789abc", "--domain", "policybot.example.nhs.uk", "--out", str(out)],
        installed["cwd"], installed["env"])
    with zipfile.ZipFile(out) as z:
        manifest = json.loads(z.read("manifest.json"))
        assert {"color.png", "outline.png"} <= set(z.namelist())
    assert manifest["validDomains"] == ["policybot.example.nhs.uk"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_listens_on_port_and_answers_health_and_readiness(installed):
    port = _free_port()
    env = {**installed["env"], "PORT": str(port), "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "s",
           "SLACK_API_URL": f"http://127.0.0.1:{_free_port()}/api/"}  # nothing listens there: no network
    proc = subprocess.Popen([str(installed["bin"] / "policybot"), "serve", "--log-format", "json"],
                            cwd=installed["cwd"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        health = None
        for _ in range(600):  # start-up loads the packs and the search model; poll until it answers
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    health = json.loads(resp.read())
                break
            except OSError:
                time.sleep(0.1)
        assert health == {"ok": True, "slack": True, "teams": True}, proc.stderr.read() if proc.poll() is not None else ""
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            assert json.loads(resp.read()) == {"ready": True, "checks": {"database": "ok", "packs": "ok"}}
    finally:
        proc.terminate()  # SIGTERM, as App Service sends: a clean stop
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert any(r["message"].startswith("listening on http://127.0.0.1:") for r in lines)
    assert any(r["message"] == "stopping" for r in lines)
