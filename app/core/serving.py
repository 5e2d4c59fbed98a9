"""`snodo serve --workers N` on Linux: N uvicorn processes, each with its own listening socket on
the one port (SO_REUSEPORT), so that the kernel spreads the connections over them.

uvicorn's own `--workers` shares one listening socket between its processes, and a process woken
by a connection accepts every connection pending. A burst of keep-alive connections — a reverse
proxy's upstream pool, twenty clients starting together — then lands on one process while the
others idle: measured with the benchmark's 20 clients, all 20 connections were held by one of two
processes (31 s of CPU against 3 s). With one socket per process in one SO_REUSEPORT group, the
kernel hashes each new connection to a socket by its addresses.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import threading
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

logger = logging.getLogger("snodo.serve")

REUSE_PORT_BALANCES = sys.platform == "linux"  # elsewhere SO_REUSEPORT does not spread connections


class PortInUse(OSError):
    """Another program listens on the address."""


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets bound to one address in one SO_REUSEPORT group.

    A plain bind first: a group admits any socket of the same user that asks for SO_REUSEPORT,
    so without it a second `snodo serve` on the port would silently take half the connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUse(error.errno, f"cannot listen on {host}:{port}: {error.strerror}") from error
        port = probe.getsockname()[1]
    sockets = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sockets.append(sock)
    return sockets


def _serve_one(app: str, options: dict[str, Any], sock: socket.socket) -> None:
    """A server process: uvicorn on its own socket (it stops on SIGINT or SIGTERM)."""
    uvicorn.Server(uvicorn.Config(app, factory=True, **options)).run(sockets=[sock])


def serve_processes(app: str, *, workers: int, host: str, port: int, options: dict[str, Any]) -> int:
    """Run `workers` server processes of the app factory `app` until SIGINT or SIGTERM; a process
    that dies is replaced, one that fails to start stops them all. Returns the exit code."""
    try:
        sockets = listening_sockets(host, port, workers)
    except PortInUse as error:
        logger.error("%s", error.strerror)
        return STARTUP_FAILURE
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}

    def start(sock: socket.socket) -> BaseProcess:
        process = context.Process(target=_serve_one, args=(app, options, sock), name="snodo-server")
        process.start()
        return process

    processes = [start(sock) for sock in sockets]
    logger.info("serving", extra={"workers": workers, "pids": [p.pid for p in processes], "port": port})
    code = 0
    try:
        while not stop.wait(0.5):
            for index, process in enumerate(processes):
                if process.exitcode is None or stop.is_set():  # a Ctrl-C reaches them all at once
                    continue
                if process.exitcode == STARTUP_FAILURE:
                    logger.error("a server process failed to start", extra={"pid": process.pid})
                    code = STARTUP_FAILURE
                    stop.set()
                    break
                logger.error("a server process died", extra={"pid": process.pid, "code": process.exitcode})
                processes[index] = start(sockets[index])
    finally:
        for process in processes:
            if process.exitcode is None:
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        for process in processes:
            process.join(30)
            if process.exitcode is None:
                process.kill()
                process.join()
        for sock in sockets:
            sock.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return code
