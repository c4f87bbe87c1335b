"""Throwaway PostgreSQL clusters of the machine's own PostgreSQL binaries, for the tests that need a cluster of
their own: a base backup restored elsewhere (the backup drill) and a streaming replica.

Each cluster lives in a folder the test owns, listens on a free port on 127.0.0.1 with trust authentication, and
is stopped (immediate mode) and deleted when the test ends. ``initdb`` and the server refuse to run as root, so
when the tests run as root the commands run as the ``postgres`` user, who must be able to enter the folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.live import free_port


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian layout), or whatever ``pg_config`` names."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _as_owner(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _run(argv: list[str], timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(_as_owner(argv), capture_output=True, text=True, timeout=timeout_s)  # noqa: S603 - our own
    assert done.returncode == 0, f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done


def _owned_folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
        for parent in path.parents:  # the server's user must be able to reach the folder
            if parent == Path("/"):
                break
            parent.chmod(parent.stat().st_mode | 0o011)
    return path


@dataclass
class Cluster:
    data: Path
    port: int
    bin: Path

    def url(self, database: str = "postgres", driver: str = "postgresql") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> float:
        """Starts the server; seconds until it accepts connections (recovery included)."""
        started = time.monotonic()
        log = self.data.parent / f"{self.data.name}.log"
        _run(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(log),
                "-w",
                "-t",
                "300",
                "-o",
                f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1",
                "start",
            ]
        )
        return time.monotonic() - started

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(  # noqa: S603 - our own
                _as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                timeout=60,
            )

    def psql(self, sql: str, database: str = "postgres") -> str:
        return _run(
            [str(self.bin / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.url(database), "-c", sql]
        ).stdout.strip()

    def log(self) -> str:
        try:
            return (self.data.parent / f"{self.data.name}.log").read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""


def new_cluster(folder: Path, bin_dir: Path, **settings: str) -> Cluster:
    """``initdb`` (trust, UTF-8) into ``folder/data``, with ``settings`` appended to postgresql.conf."""
    data = _owned_folder(folder) / "data"
    _run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
    conf = {"fsync": "on", "wal_level": "replica", "max_wal_senders": "10", **settings}
    lines = "".join(f"{name} = '{value}'\n" for name, value in conf.items())
    _run(["sh", "-c", f'printf %s "$0" >> {data / "postgresql.conf"}', lines])
    return Cluster(data, free_port(), bin_dir)


def base_backup(source: Cluster, folder: Path, *, standby: bool = False) -> tuple[Cluster, float]:
    """``pg_basebackup`` of ``source`` (WAL streamed with it, so it is consistent on its own) into
    ``folder/data``; with ``standby`` it is set up to follow ``source`` as a streaming replica. Returns the new
    cluster (not started) and the seconds the backup took."""
    data = _owned_folder(folder) / "data"
    started = time.monotonic()
    argv = [str(source.bin / "pg_basebackup"), "-d", source.url(), "-D", str(data), "-X", "stream", "-c", "fast"]
    _run(argv + (["-R"] if standby else []), timeout_s=1800)
    return Cluster(data, free_port(), source.bin), time.monotonic() - started


@contextmanager
def clusters() -> Iterator[list[Cluster]]:
    """Collects the clusters a test makes and stops every one of them at the end, whatever happened."""
    made: list[Cluster] = []
    try:
        yield made
    finally:
        for cluster in made:
            cluster.stop()
