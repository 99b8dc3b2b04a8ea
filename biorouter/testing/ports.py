"""Who holds a TCP port on this machine: refuse a busy port up front, and tell our server from a stranger.

``serve --dev`` once took any server answering the liveness probe on its port for its own proxy
(issue 20: ``make run`` twice). :func:`ensure_port_free` refuses a taken port before anything
starts; :func:`port_owned_by_session` checks, on Linux, that the socket listening on the port
belongs to a process of the session we started (the proxy and any workers it forks).
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

__all__ = ["PortInUseError", "ensure_port_free", "port_owned_by_session"]

_PROC = Path("/proc")
_LISTEN = "0A"  # TCP state code in /proc/net/tcp


class PortInUseError(OSError):
    """The port is taken; the message names it."""


def ensure_port_free(host: str, port: int) -> None:
    """Raise :class:`PortInUseError` naming ``host:port`` when a server already listens there.

    Binds like uvicorn does (``SO_REUSEADDR``), so a port in TIME_WAIT after a stopped server counts
    as free while any listening socket, on this address or on 0.0.0.0, counts as taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            raise PortInUseError(
                f"{host}:{port} is already in use (port {port}; another 'biorouter serve --dev' or proxy "
                f"may be running there): stop it, or choose another port ({e.strerror})"
            ) from e


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in (_PROC / "net" / table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(inode)
    return inodes


def _session_of(pid: str) -> int | None:
    try:
        stat = (_PROC / pid / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp session ...
    return int(fields[3])


def port_owned_by_session(port: int, session_id: int) -> bool | None:
    """Whether a process of session ``session_id`` listens on ``port``; None when this OS cannot tell.

    Reads ``/proc`` (Linux): the listening socket's inode, then which process holds it.
    """
    if not (_PROC / "net" / "tcp").exists():
        return None
    try:
        next((_PROC / str(session_id) / "fd").iterdir(), None)  # our own child's fds: readable unless /proc hides them
    except OSError:
        return None
    inodes = _listening_inodes(port)
    if not inodes:
        return False
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit() or _session_of(entry.name) != session_id:
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        return True
    return False
