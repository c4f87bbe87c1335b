"""Child processes of the harness: started in sessions of their own, logged to files, always killed at the end."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Child:
    """One child process (and, through its own process group, everything it forks: uvicorn's workers)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own modules, argv built by the harness
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the harness only; it stops us in order
            )
        finally:
            log.close()
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``timeout_s``; returns the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        # uvicorn's worker processes live in the same group: make sure none outlives its parent.
        _signal_group(process.pid, signal.SIGKILL)
        return process.returncode

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Children:
    """Every child the harness started, stopped in reverse order at the end whatever happened."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        child = Child(name, argv, env, self.log_dir).start()
        self.children.append(child)
        return child

    def stop(self, child: Child, timeout_s: float = 10.0) -> None:
        child.stop(timeout_s)
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            try:
                child.stop()
            except Exception as exc:  # keep stopping the others
                print(f"  ! could not stop {child.name}: {exc}", file=sys.stderr)
        self.children.clear()


async def wait_http(url: str, child: Child, timeout_s: float = 60.0, consecutive: int = 1) -> None:
    """Until ``url`` answers 200 ``consecutive`` times in a row, each on a new connection (so that with several
    uvicorn workers more than one has answered); fails if the child exits or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    streak = 0
    while True:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited while starting:\n{child.tail()}")
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                ok = (await client.get(url)).status_code == 200
        except httpx.TransportError:
            ok = False
        streak = streak + 1 if ok else 0
        if streak >= consecutive:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{child.name} not ready at {url} after {timeout_s:.0f} s:\n{child.tail()}")
        await asyncio.sleep(0.05 if ok else 0.2)


async def wait_until(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float, interval_s: float = 0.2
) -> float:
    """Poll ``check`` until it is true; the seconds it took. Raises ``TimeoutError`` after ``timeout_s``."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"{what}: not done after {timeout_s:.0f} s")
        await asyncio.sleep(interval_s)
    return time.monotonic() - start
