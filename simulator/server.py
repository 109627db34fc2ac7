"""Serving the simulator on loopback: in a background thread (tests, the demo) or in the foreground."""

from __future__ import annotations

import logging
import socket
import threading
import time
from types import TracebackType

import uvicorn

from simulator.app import SimConfig, Simulator

__all__ = ["SimServer", "free_port", "serve"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _config(sim: Simulator, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        sim,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
    )


class SimServer:
    """``with SimServer(Simulator(cfg)) as srv: srv.base_url`` runs uvicorn in a thread."""

    def __init__(self, sim: Simulator | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim = sim or Simulator()
        self.host = host
        self.port = port or free_port(host)
        self._server = uvicorn.Server(_config(self.sim, host, self.port, "warning"))
        self._thread = threading.Thread(target=self._server.run, name=f"kiwoom-sim:{self.port}", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> SimServer:
        # a simulated dropped connection is an exception on purpose: keep it out of the logs
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"simulator did not start on {self.base_url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve(config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 8123) -> None:
    """Serve in the foreground until interrupted (``kwh sim``)."""
    uvicorn.Server(_config(Simulator(config), host, port, "info")).run()
