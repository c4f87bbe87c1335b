"""Our processes, killed and restarted often, without paying for the imports each time.

Importing the app costs ~2 s of CPU (more on a busy machine); the crash suites restart a worker a hundred
times and the API ten. So one process — ``python -m tests.soak.crash_forkserver`` — imports everything once,
then forks a fresh process for each JSON line ``{"argv", "env", "log", "crash"}`` on its stdin and answers
``PID <pid>``; when one dies it reports ``EXIT <pid> <returncode>`` (``-9``: SIGKILL). A child gets the given
environment (its ``SW_*`` settings are read after the fork), its output in ``log``, and runs either
``sw <argv>`` (``app.cli``: ``serve``, ``worker``, ``matcher``, ``mock-agencies`` — the console script itself)
or, with ``crash: [point, nth]``, the worker with a planted kill (``crash_worker.run``), or with
``crash: ["matcher:<point>", nth]`` the matcher with one (``crash_matcher.run``). Children are real processes
killed for real; the parent holds no thread, event loop or connection when it forks. When its stdin closes
(the test run ended, however it ended), it SIGKILLs the children it has left and exits.

``forkserver()`` is the test side: one server per test run, started on first use.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


# --- the server (its own process) ---------------------------------------------------------------------------


def _child(request: dict[str, Any]) -> None:
    code = 1
    try:
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        for name in [n for n in os.environ if n.startswith("SW_")]:
            del os.environ[name]
        os.environ.update(request["env"])
        if request.get("crash"):
            point, nth = request["crash"]
            if point.startswith("matcher:"):
                from tests.soak.crash_matcher import run as run_matcher

                run_matcher(point.removeprefix("matcher:"), int(nth))
            else:
                from tests.soak.crash_worker import run

                run(point, int(nth))
        else:
            from app.cli import main

            sys.argv = ["sw", *request["argv"]]
            main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def serve() -> None:
    # Everything a child will need, imported once (none of it starts a thread or opens a connection).
    import alembic.command  # noqa: F401
    import asyncpg  # noqa: F401
    import sqlalchemy.dialects.postgresql.asyncpg  # noqa: F401 - loaded lazily by the first engine
    import uvicorn  # noqa: F401

    import app.cli
    import app.main
    import app.matcher
    import app.mock_agencies
    import app.worker  # noqa: F401
    import tests.soak.crash_matcher
    import tests.soak.crash_worker  # noqa: F401

    assert threading.active_count() == 1, "no thread may exist at fork time"
    children: set[int] = set()

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def reap() -> None:
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            children.discard(pid)
            say(f"EXIT {pid} {-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)}")

    say("READY")
    buffer = b""
    try:
        while True:
            readable, _, _ = select.select([0], [], [], 0.02)
            reap()
            if not readable:
                continue
            chunk = os.read(0, 65536)
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    _child(request)
                children.add(pid)
                say(f"PID {pid}")
    finally:
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        for pid in list(children):
            os.waitpid(pid, 0)


# --- the client (the test process) --------------------------------------------------------------------------


class Forkserver:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.soak.crash_forkserver"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if not k.startswith("SW_")},
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        assert ready == b"READY\n", ready
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.pids: list[int] = []
        self.exits: dict[int, int] = {}
        self.reader = threading.Thread(target=self._read, name="forkserver-reader", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            kind, pid, *rest = line.decode().split()
            with self.changed:
                if kind == "PID":
                    self.pids.append(int(pid))
                else:
                    self.exits[int(pid)] = int(rest[0])
                self.changed.notify_all()

    def spawn(
        self, argv: list[str], env: dict[str, str], log: Path, crash: tuple[str, int] | None = None
    ) -> ForkedProcess:
        assert self.process.stdin is not None
        with self.changed:
            self.pids.clear()
            request = {"argv": argv, "env": env, "log": str(log), "crash": list(crash) if crash else None}
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
            assert self.changed.wait_for(lambda: bool(self.pids), timeout=10), "the forkserver did not fork"
            return ForkedProcess(self, self.pids.pop(), log)

    def exit_code(self, pid: int) -> int | None:
        with self.lock:
            return self.exits.get(pid)

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # it kills its children and exits
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(timeout=5)


class ForkedProcess:
    """One forked child: the same calls as ``crash_support.Proc``, plus waiting for its death."""

    def __init__(self, server: Forkserver, pid: int, log: Path) -> None:
        self.server, self.pid, self.log = server, pid, log

    def alive(self) -> bool:
        return self.server.exit_code(self.pid) is None

    async def wait_exit(self, timeout_s: float) -> int | None:
        """The exit code (``-9``: SIGKILL), or None while it still runs after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        # The reader thread learns it, so poll (an asyncio.Event would need the loop from that thread).
        while (code := self.server.exit_code(self.pid)) is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        return code

    def kill(self) -> int:
        """SIGKILL from outside; the exit code the forkserver saw."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        with self.server.changed:
            assert self.server.changed.wait_for(lambda: self.pid in self.server.exits, 10), f"{self.pid} survived"
            return self.server.exits[self.pid]

    def stop(self) -> None:
        if self.alive():
            self.kill()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


_server: Forkserver | None = None


def forkserver() -> Forkserver:
    """The forkserver of this test run (started on first use, closed at exit)."""
    global _server
    if _server is None or _server.process.poll() is not None:
        _server = Forkserver()
        atexit.register(_server.close)
    return _server


if __name__ == "__main__":
    serve()
