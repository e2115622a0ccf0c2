"""Running the application: a listening socket, uvicorn, and reload on SIGHUP."""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import threading

import uvicorn
from fastapi import FastAPI

from dotrec.serve._holder import ModelHolder, settle_heap

__all__ = ["bind", "is_loopback", "run_server"]

_log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str = "127.0.0.1", port: int = 8000, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    Connections made before the server runs wait in the backlog, so the
    address can be announced as soon as this returns.

    Raises:
        OSError: the address is taken or cannot be bound.
        ValueError: ``port`` is outside 0..65535.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer from 0 to 65535, got {port!r}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY only on sockets that do, and
    # without it keep-alive answers wait ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as err:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port} ({err.strerror or err})") from err
    return sock


def run_server(
    app: FastAPI,
    sock: socket.socket,
    *,
    log_level: str = "warning",
    access_log: bool = False,
    reload_on_sighup: bool = True,
) -> None:
    """Serve ``app`` on ``sock`` until SIGINT or SIGTERM.

    The process's objects alive at the start (and after each reload) are
    left out of garbage collections (:func:`~dotrec.serve.settle_heap`),
    which otherwise stall requests while walking them.

    With ``reload_on_sighup`` (and when called from the main thread), SIGHUP
    reloads the model folder being served, as ``POST /admin/reload`` does:
    in the background, keeping the old model when the folder is refused.
    """
    config = uvicorn.Config(app, log_level=log_level, access_log=access_log)
    server = uvicorn.Server(config)
    holder: ModelHolder = app.state.holder
    holder.freeze_heap = True
    settle_heap()
    hangup = getattr(signal, "SIGHUP", None)
    install = reload_on_sighup and hangup and threading.current_thread() is threading.main_thread()
    previous = signal.signal(hangup, lambda *_: _reload_in_background(holder)) if install else None
    try:
        server.run(sockets=[sock])
    finally:
        if install:
            signal.signal(hangup, previous)


def _reload_in_background(holder: ModelHolder) -> None:
    # The handler runs on the event loop's thread; loading must not block it.
    threading.Thread(target=_reload, args=(holder,), name="dotrec-reload", daemon=True).start()


def _reload(holder: ModelHolder) -> None:
    try:
        holder.reload()
    except Exception as err:  # any failure keeps the old model; the log says why
        _log.error("reload on SIGHUP refused, still serving %s: %s", holder.current.model_id, err)
