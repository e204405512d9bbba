"""``edgeopt serve``: the problems, methods and referee behind HTTP/JSON, for schedulers written in any language.

* ``models.py``: request and response bodies, made of edgeopt's own models (the OpenAPI document comes from them);
* ``app.py``: the FastAPI application, its limits (dependencies declared once) and the state the routes share;
* ``bridge.py``: the event loop's way to the worker Pool (or a Dask cluster): no method runs in the event loop;
* ``store.py``: jobs and rows in SQLite, one transaction per state change;
* ``metrics.py``: ``/metrics`` in the Prometheus text format.

Needs the ``serve`` extra (FastAPI, uvicorn); nothing else in edgeopt imports this package.
"""
from __future__ import annotations

import ipaddress
import socket
import sys

from edgeopt.errors import InputError
from edgeopt.serve.app import Service, Settings, create_app

__all__ = ["Service", "Settings", "create_app", "is_loopback", "run"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything starts: a taken port is one line, exit 2."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        # proto IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP;
        # with it on, a keep-alive response's body waited 40 ms for the client's delayed ACK of its headers
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        raise InputError("--host/--port", f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def run(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM (then ``edgeopt.errors.Interrupted`` is raised, after a clean shutdown:
    solves answered 503, jobs marked ``interrupted``, workers killed, the store closed)."""
    import uvicorn

    sock = _listen(settings.host, settings.port)
    settings.port = sock.getsockname()[1]  # --port 0: the one the kernel chose
    service = Service(settings)

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            if service.bridge.loop is not None:
                service.bridge.loop.call_soon_threadsafe(service.stopping)
            super().handle_exit(sig, frame)

    config = uvicorn.Config(create_app(service), log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=5)
    try:
        Server(config).run(sockets=[sock])
    finally:
        sock.close()
        if service.bridge.loop is None:  # the application never started: nothing else closes these
            import asyncio

            asyncio.run(service.shutdown())
        sys.stderr.flush()
