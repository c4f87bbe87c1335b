"""Our console script as a real server in its own process, for the tests that go over the network."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any SW_ setting, plus ``settings``."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SW_")} | settings


@dataclass
class LiveServer:
    base: str
    process: subprocess.Popen[str]
    output: str = ""


@contextmanager
def live_sw(command: str, env: dict[str, str], ready_path: str, timeout_s: float = 120) -> Iterator[LiveServer]:
    """``python -m app <command> --host 127.0.0.1 --port <free>``, until ``ready_path`` answers 200."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [sys.executable, "-m", "app", command, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{server.base}{ready_path}", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, f"sw {command} exited early"
            assert time.monotonic() < deadline, f"sw {command} did not become ready"
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        server.output, _ = process.communicate(timeout=15)
