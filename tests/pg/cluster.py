"""A throwaway PostgreSQL cluster for the tests and benchmarks: initdb in a temp dir, a unix socket, no TCP.

PostgreSQL refuses to run as root, so under root (CI) the server runs as `nobody`.
Everything lives in one temporary folder that is removed when the cluster stops.
Durability is off (fsync, synchronous_commit): the data is thrown away anyway.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

PORT = 5432  # only names the socket file; nothing listens on TCP


class ClusterUnavailable(RuntimeError):
    """No PostgreSQL server binaries here, or the server would not start; the message says which."""


def find_bindir() -> Path:
    """The folder holding initdb, pg_ctl and postgres (Debian keeps them out of PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise ClusterUnavailable("no PostgreSQL server installed (initdb not found; "
                                 "apt-get install postgresql, or set POLICYBOT_TEST_DATABASE_URL)")
    return Path(candidates[-1]).parent


class Cluster:
    def __init__(self):
        self.bindir = find_bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="policybot-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.as_user = None
        if os.geteuid() == 0:  # postgres will not run as root: hand the folder to an unprivileged user
            self.as_user = pwd.getpwnam("nobody")
            os.chown(self.dir, self.as_user.pw_uid, self.as_user.pw_gid)
        self.url = f"postgresql://policybot@/postgres?host={self.dir}&port={PORT}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        kw = {}
        if self.as_user:
            kw = {"user": self.as_user.pw_uid, "group": self.as_user.pw_gid, "extra_groups": []}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", HOME=str(self.dir))
        return subprocess.run([str(self.bindir / args[0]), *args[1:]], capture_output=True, text=True,
                              cwd=self.dir, env=env, check=check, **kw)

    def init(self) -> "Cluster":
        try:
            self._run("initdb", "-D", str(self.data), "-U", "policybot", "--auth=trust", "-E", "UTF8",
                      "--no-sync", "--no-instructions")
        except subprocess.CalledProcessError as exc:
            raise ClusterUnavailable(f"initdb failed: {(exc.stderr or exc.stdout).strip().splitlines()[-1:]}") from None
        # The superuser needs no password on this private socket; every other role does (to test bad passwords).
        (self.data / "pg_hba.conf").write_text("local all policybot trust\nlocal all all scram-sha-256\n")
        return self

    def start(self) -> "Cluster":
        opts = (f"-k {self.dir} -p {PORT} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB")
        try:
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start")
        except subprocess.CalledProcessError:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-1:] if self.log.exists() else []
            raise ClusterUnavailable(f"the PostgreSQL server would not start: {' '.join(tail)}") from None
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def destroy(self) -> None:
        if self.data.exists() and self.running():
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def start_cluster() -> Cluster:
    """A running throwaway cluster; raises ClusterUnavailable (with the reason) if there can't be one."""
    cluster = Cluster()
    try:
        return cluster.init().start()
    except BaseException:
        cluster.destroy()
        raise
