"""The Prefect API a ``kwh ... --prefect`` run talks to: ``PREFECT_API_URL``'s, or a child server.

Prefect's own ephemeral mode starts an API server that outlives a killed ``kwh``
(orphans accumulate). Without ``PREFECT_API_URL`` this starts ``prefect server
start`` as a child that the kernel kills when ``kwh`` dies, however it dies
(``PR_SET_PDEATHSIG`` through ``prctl``), and stops it when the run ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

__all__ = ["prefect_api"]

PR_SET_PDEATHSIG = 1
START_SECONDS = 120.0  # a loaded 2-core machine takes 10-30 s


def _die_with(parent: int) -> Callable[[], None]:
    def preexec() -> None:  # in the child, before exec: ctypes and os only
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def prefect_api(notify: Callable[[str], None]) -> Iterator[str]:
    """``PREFECT_API_URL`` while the block runs: the environment's, or a child server's."""
    given = os.environ.get("PREFECT_API_URL")
    if given:
        yield given
        return
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the server
    argv = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    notify(f"starting a Prefect API server on {url} (it stops with this command)...")
    proc = subprocess.Popen(
        [*argv, "--no-services"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with(os.getpid()),
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                tail = log.read()[-600:].decode(errors="replace")
                raise RuntimeError(f"the Prefect API server did not start: {tail}")
            time.sleep(0.3)
        os.environ["PREFECT_API_URL"] = url
        yield url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
