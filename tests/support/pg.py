"""A real PostgreSQL server for the backend tests, from the ``pgserver`` wheel's binaries.

PostgreSQL refuses to run as root, and CI runs as root: the server then runs as an
unprivileged user made for the tests (``mmstest``), through ``setpriv``. It listens on
127.0.0.1 (a free port) with password authentication, so the credential tests see real
authentication failures, and on a Unix socket in its own folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

USER = "mmstest"  # the unprivileged system user the server runs as when we are root
SUPERUSER = "mms"  # the database superuser initdb makes


def pg_bin() -> Path | None:
    """The wheel's ``bin`` folder, or None when ``pgserver`` is not installed."""
    try:
        import pgserver  # noqa: F401  (only its files are used)
    except ImportError:
        return None
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    assert spec is not None and spec.origin is not None
    folder = Path(spec.origin).parent / "pginstall" / "bin"
    return folder if (folder / "postgres").is_file() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ensure_user() -> tuple[int, int] | None:
    """(uid, gid) to run the server as, creating the user if needed; None: run as we are."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
            check=True, capture_output=True,
        )  # fmt: skip
        entry = pwd.getpwnam(USER)
    return entry.pw_uid, entry.pw_gid


@dataclass
class PgServer:
    """One server in a temporary folder; ``url(db)`` gives a connection URL."""

    bin: Path
    folder: Path
    port: int
    password: str
    ids: tuple[int, int] | None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        return self.folder / "sock"

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql://{SUPERUSER}:{secret}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if self.ids is not None:
            uid, gid = self.ids
            cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *cmd]
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "TZ": "UTC"}
        return subprocess.run(cmd, check=check, capture_output=True, text=True, env=env,
                              cwd=self.folder, timeout=120)  # fmt: skip

    def init(self) -> None:
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        self._run(self.bin / "initdb", "-D", str(self.data), "-U", SUPERUSER, "-E", "UTF8",
                  "--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-sync")  # fmt: skip
        pwfile.unlink()
        conf = self.data / "postgresql.conf"
        with conf.open("a") as fh:  # small and quick: a test server, not a tuned one (a
            # commit still reaches the OS before it returns: a stop loses no committed work)
            fh.write("fsync = off\nfull_page_writes = off\n"
                     "shared_buffers = 64MB\nmax_connections = 40\n")  # fmt: skip

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
        self._run(self.bin / "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"),
                  "-o", opts, "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(self.bin / "pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop",
                  check=False)  # fmt: skip

    def running(self) -> bool:
        res = self._run(self.bin / "pg_ctl", "-D", str(self.data), "status", check=False)
        return res.returncode == 0

    def sql(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as con:
            con.execute(statement)  # type: ignore[arg-type]

    def new_database(self, prefix: str = "t") -> str:
        """A fresh database with the vector extension; returns its URL."""
        name = f"{prefix}_{secrets.token_hex(4)}"
        self.sql(f"CREATE DATABASE {name}")
        self.sql("CREATE EXTENSION IF NOT EXISTS vector", name)
        return self.url(name)

    def _chown(self, path: Path) -> None:
        if self.ids is not None:
            os.chown(path, *self.ids)

    def remove(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def _reachable(bin_dir: Path, ids: tuple[int, int]) -> Path:
    """``bin_dir``, or a copy of its installation the test user can run: a checkout in a
    ``mktemp -d`` folder (mode 0700) hides the wheel's binaries from every other user.
    The copy is made once per installation and kept in the temporary folder."""
    uid, gid = ids
    # postgres and initdb find each other by their own path, which must be readable
    probe = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
             "test", "-r", str(bin_dir / "postgres")]  # fmt: skip
    if subprocess.run(probe, capture_output=True, check=False, timeout=60).returncode == 0:
        return bin_dir
    # Copy the package with its auditwheel libraries beside it: the binaries find them
    # through RPATH $ORIGIN/../../../pgserver.libs.
    package = bin_dir.parent.parent
    stamp = hashlib.sha256(str(package.resolve()).encode()).hexdigest()[:12]
    copy = Path(tempfile.gettempdir()) / f"mms-pgserver-{stamp}"
    if not (copy / "pgserver" / "pginstall" / "bin" / "postgres").is_file():
        partial = Path(tempfile.mkdtemp(prefix="mms-pgserver-"))
        shutil.copytree(package / "pginstall", partial / "pgserver" / "pginstall", symlinks=True)
        libs = package.parent / "pgserver.libs"
        if libs.is_dir():
            shutil.copytree(libs, partial / "pgserver.libs", symlinks=True)
        os.chmod(partial, 0o755)
        os.chmod(partial / "pgserver", 0o755)
        try:
            os.rename(partial, copy)
        except OSError:  # another test process made it first
            shutil.rmtree(partial, ignore_errors=True)
    return copy / "pgserver" / "pginstall" / "bin"


@contextlib.contextmanager
def pg_server() -> Iterator[PgServer]:
    """Start a server (initdb in a temporary folder), yield it, stop and remove it."""
    folder_bin = pg_bin()
    if folder_bin is None:
        raise RuntimeError("the pgserver wheel is not installed")
    ids = _ensure_user()
    if ids is not None:
        folder_bin = _reachable(folder_bin, ids)
    folder = Path(tempfile.mkdtemp(prefix="mms-pg-"))
    server = PgServer(folder_bin, folder, _free_port(), secrets.token_hex(12), ids)
    try:
        server._chown(folder)
        os.chmod(folder, 0o700)
        server.socket_dir.mkdir()
        server._chown(server.socket_dir)
        server.init()
        server.start()
        deadline = time.monotonic() + 30
        while not server.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        yield server
    finally:
        server.remove()
