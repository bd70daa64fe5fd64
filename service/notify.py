"""systemd's readiness protocol (``sd_notify``) without libsystemd: one datagram of
``KEY=value`` lines to the ``AF_UNIX`` socket named by ``NOTIFY_SOCKET``.

A unit with ``Type=notify`` counts the service started only when it sends ``READY=1``, so
``systemctl start`` returns (and units ordered after it start) once the socket listens, not
once the process exists; ``STOPPING=1`` tells it the stop has begun. Without
``NOTIFY_SOCKET`` (a terminal, a container, a test) nothing is sent."""

from __future__ import annotations

import os
import socket

import structlog

log = structlog.get_logger(__name__)

NOTIFY_SOCKET = "NOTIFY_SOCKET"


def notify(*fields: str) -> bool:
    """Send ``fields`` (``"READY=1"``, ``"STATUS=..."``) as one message; whether it was sent.

    The address is a filesystem path or, starting with ``@``, a Linux abstract socket. A
    failure is logged and otherwise ignored: the service works the same unwatched, and
    systemd reports a missing READY=1 on its own (the start times out)."""
    address = os.environ.get(NOTIFY_SOCKET, "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):  # vsock: and other transports are for virtual machines' managers
        log.warning("notify_failed", address=address, error="not an AF_UNIX path or abstract socket")
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(fields).encode(), address)
    except OSError as exc:
        log.warning("notify_failed", address=os.environ[NOTIFY_SOCKET], error=str(exc))
        return False
    return True
