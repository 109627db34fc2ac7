"""Real OS processes for tests/test_flows_resume.py: the simulator, a Prefect API server, ``kwh`` commands.

Every child runs in its own session (process group), so killing one by its id also
takes down anything it started (with Prefect's ephemeral mode a ``kwh`` command
runs its own API server as a child). Output goes to files in the test's folder,
never to a pipe that could fill up and stall the child.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from simulator.server import free_port

ROOT = Path(__file__).resolve().parent.parent
KWH = [sys.executable, "-m", "flows.cli"]


def clean_env(tmp: Path) -> dict[str, str]:
    """The environment minus the project's and Prefect's settings; Prefect's home and tokens in ``tmp``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIWOOM_", "KWH_", "PREFECT_"))}
    env.update(
        {
            "PREFECT_HOME": str(tmp / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "KIWOOM_TOKEN_CACHE": str(tmp / "tokens"),
            "COLUMNS": "160",
            "NO_COLOR": "1",
        }
    )
    return env


class Proc:
    """A child process in its own session, its stdout and stderr in ``tmp/<name>.log``."""

    def __init__(self, tmp: Path, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log = tmp / f"{name}.log"
        self._out = self.log.open("w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv, cwd=tmp, env=env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")

    def kill(self) -> int:
        """SIGKILL the child's process group (the group id is the child's pid) and reap the child."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        code = self.proc.wait(timeout=30)
        self._out.close()
        return code

    def wait(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} did not finish in {timeout:.0f} s:\n{self.output()[-3000:]}"
            ) from None
        # anything the command started in its group (an ephemeral Prefect server) goes too
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._out.close()
        return code

    def seconds(self) -> float:
        return time.monotonic() - self.started


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def wait_http(url: str, proc: Proc, timeout: float) -> bool:
    """True once ``url`` answers 200; False if ``proc`` died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def start_sim(
    tmp: Path, env: dict[str, str], stocks: int, seed: int, *extra: str, rate: float = 0
) -> tuple[Proc, str]:
    """``kwh sim`` on a free port, by default with no server-side rate limit (the client paces
    itself); ``extra``: more ``kwh sim`` options."""
    port = free_port()
    argv = [
        *KWH,
        "sim",
        "--port",
        str(port),
        "--rate",
        f"{rate:g}",
        "--stocks",
        str(stocks),
        "--seed",
        str(seed),
    ]
    return Proc(tmp, "sim", [*argv, *extra], env), f"http://127.0.0.1:{port}"


def start_prefect_server(tmp: Path, env: dict[str, str]) -> tuple[Proc, str]:
    """``prefect server start`` on a free port: one API server for every ``kwh`` command of the module."""
    port = free_port()
    argv = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    return Proc(tmp, "prefect-server", argv, env), f"http://127.0.0.1:{port}/api"
