"""Wire format between the runtime and the launcher.

One request per connection on a SOCK_SEQPACKET unix socket: the client sends one
JSON object (plus file descriptors as SCM_RIGHTS when the operation needs them, e.g.
exec's stdio), the launcher answers with one JSON object, then closes. SEQPACKET keeps
message boundaries, so no framing is needed.
"""

from __future__ import annotations

import array
import json
import os
import socket
from typing import Any

MAX_MESSAGE = 1 << 20
MAX_FDS = 8


class ProtocolError(Exception):
    """A malformed message on the launcher socket."""


def encode(obj: dict[str, Any]) -> bytes:
    data = json.dumps(obj, separators=(",", ":")).encode()
    if len(data) > MAX_MESSAGE:
        raise ProtocolError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE}")
    return data


def decode(data: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except ValueError as e:
        raise ProtocolError(f"bad message: {e}") from e
    if not isinstance(obj, dict):
        raise ProtocolError("message is not an object")
    return obj


def recv_with_fds(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """Receive one message and any fds attached (owned by the caller, close-on-exec)."""
    msg, fds = recv_raw(sock)
    if not msg:
        for fd in fds:
            os.close(fd)
        raise ProtocolError("empty message")
    return decode(msg), fds


def recv_raw(sock: socket.socket) -> tuple[bytes, list[int]]:
    """One message as bytes (empty at EOF) and its fds (owned by the caller, close-on-exec)."""
    fds = array.array("i")
    msg, ancdata, _flags, _addr = sock.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    for fd in fds:
        os.set_inheritable(fd, False)  # only what a child dup2()s onto 0-2 may survive exec
    return msg, list(fds)
