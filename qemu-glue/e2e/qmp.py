#!/usr/bin/env python3
"""Small standard-library QMP client (QEMU Machine Protocol over a UNIX socket).

Library use:

    from e2e.qmp import QMPClient, QMPError
    with QMPClient("/tmp/qmp.sock", connect_timeout=10) as q:
        print(q.greeting["QMP"]["version"]["qemu"])
        q.execute("migrate-set-parameters", {"mode": "cpr-transfer"})
        st = q.execute("query-status")
        ev = q.wait_event("MIGRATION", timeout=30,
                          match=lambda e: e["data"]["status"] == "completed")
        q.execute("getfd", {"fdname": "tap0"}, fds=[tapfd])   # SCM_RIGHTS

CLI use (one command, prints the JSON 'return'):

    qmp.py SOCKET COMMAND ['{"json": "arguments"}']

Events that arrive while waiting for a reply are kept in order in ``events``
(``get_events()`` drains them, ``wait_event()`` blocks for one).
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from typing import Any, Callable, Iterable, Optional

__all__ = ["QMPClient", "QMPError", "QMPConnectionError", "QMPTimeout"]


class QMPConnectionError(Exception):
    """The socket could not be opened, or the peer closed it."""


class QMPTimeout(QMPConnectionError):
    """No reply / event within the timeout."""


class QMPError(Exception):
    """QEMU answered a command with {"error": {...}}."""

    def __init__(self, command: str, error: dict):
        self.command = command
        self.error = error
        self.error_class = error.get("class", "")
        self.desc = error.get("desc", "")
        super().__init__(f"{command}: {self.error_class}: {self.desc}")


class QMPClient:
    def __init__(self, path: str, *, connect_timeout: float = 0.0,
                 timeout: Optional[float] = 60.0, negotiate: bool = True):
        """Connect to the QMP UNIX socket at ``path``.

        connect_timeout: keep retrying connect() this long (the socket may not exist yet
        while QEMU starts). timeout: default seconds to wait for a reply (None = forever).
        negotiate: send qmp_capabilities right after reading the greeting.
        """
        self.path = path
        self.timeout = timeout
        self.events: list[dict] = []
        self.greeting: dict = {}
        self._buf = b""
        self._next_id = 0
        self._sock = self._connect(path, connect_timeout)
        try:
            self.greeting = self._read_msg(timeout)
            if "QMP" not in self.greeting:
                raise QMPConnectionError(f"unexpected greeting: {self.greeting!r}")
            if negotiate:
                self.execute("qmp_capabilities")
        except BaseException:
            self.close()
            raise

    # -- connection -------------------------------------------------------------------------
    @staticmethod
    def _connect(path: str, connect_timeout: float) -> socket.socket:
        deadline = time.monotonic() + connect_timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                return s
            except (FileNotFoundError, ConnectionRefusedError) as e:
                s.close()
                if time.monotonic() >= deadline:
                    raise QMPConnectionError(f"cannot connect to {path}: {e}") from e
                time.sleep(0.05)
            except BaseException:
                s.close()
                raise

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self) -> "QMPClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    # -- wire ---------------------------------------------------------------------------------
    def _read_msg(self, timeout: Optional[float]) -> dict:
        """Read one JSON object (QMP messages are newline-terminated)."""
        if self._sock is None:
            raise QMPConnectionError("not connected")
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buf:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise QMPTimeout(f"no QMP message within {timeout} s")
                self._sock.settimeout(left)
            else:
                self._sock.settimeout(None)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout as e:
                raise QMPTimeout(f"no QMP message within {timeout} s") from e
            except OSError as e:
                raise QMPConnectionError(f"recv: {e}") from e
            if not chunk:
                raise QMPConnectionError("QMP connection closed by peer")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        line = line.strip()
        if not line:
            return self._read_msg(timeout)
        return json.loads(line)

    def _send(self, obj: dict, fds: Iterable[int] = ()) -> None:
        if self._sock is None:
            raise QMPConnectionError("not connected")
        data = json.dumps(obj).encode() + b"\n"
        fds = list(fds)
        self._sock.settimeout(self.timeout)
        try:
            if fds:
                # fds ride on the first byte(s); QEMU's monitor queues them for getfd/add-fd.
                sent = socket.send_fds(self._sock, [data], fds)
                if sent < len(data):
                    self._sock.sendall(data[sent:])
            else:
                self._sock.sendall(data)
        except OSError as e:
            raise QMPConnectionError(f"send: {e}") from e

    # -- commands -----------------------------------------------------------------------------
    def execute(self, cmd: str, args: Optional[dict] = None, *, fds: Iterable[int] = (),
                timeout: Any = "default") -> Any:
        """Run a QMP command; return its 'return' value or raise QMPError on 'error'."""
        if timeout == "default":
            timeout = self.timeout
        self._next_id += 1
        req_id = f"fdh-{self._next_id}"
        msg: dict = {"execute": cmd, "id": req_id}
        if args:
            msg["arguments"] = args
        self._send(msg, fds)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                resp = self._read_msg(left)
            except QMPTimeout as e:
                raise QMPTimeout(f"{cmd}: no reply within {timeout} s") from e
            if "event" in resp:
                self.events.append(resp)
                continue
            if resp.get("id") != req_id:
                # reply to something else (should not happen: we are synchronous)
                continue
            if "error" in resp:
                raise QMPError(cmd, resp["error"])
            return resp.get("return")

    def cmd(self, cmd: str, **kwargs: Any) -> Any:
        """execute() with keyword arguments (dashes: use execute() with a dict)."""
        return self.execute(cmd, kwargs or None)

    def quit(self, wait: float = 2.0) -> list[dict]:
        """Send 'quit', tolerate the connection closing, return the events seen
        (normally SHUTDOWN), then close the socket."""
        try:
            self.execute("quit")
        except QMPConnectionError:
            pass
        events = self.get_events(wait=wait) if self._sock is not None else self.events
        self.close()
        return events

    def hmp(self, command_line: str) -> str:
        return self.execute("human-monitor-command", {"command-line": command_line})

    # -- events -------------------------------------------------------------------------------
    def get_events(self, wait: float = 0.0) -> list[dict]:
        """Return and clear the collected events; first read whatever arrives within
        ``wait`` seconds (0 = only what is already buffered or readable now)."""
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            try:
                msg = self._read_msg(max(left, 0.001))
            except QMPTimeout:
                break
            except QMPConnectionError:
                break   # peer closed (e.g. after quit): return what we have
            if "event" in msg:
                self.events.append(msg)
        out, self.events = self.events, []
        return out

    def wait_event(self, name: Optional[str] = None, timeout: Optional[float] = 60.0,
                   match: Optional[Callable[[dict], bool]] = None) -> dict:
        """Block until an event (named ``name``, accepted by ``match``) arrives; remove it
        from ``events`` and return it. Events already collected are checked first."""
        def ok(ev: dict) -> bool:
            return (name is None or ev.get("event") == name) and (match is None or match(ev))

        for i, ev in enumerate(self.events):
            if ok(ev):
                return self.events.pop(i)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise QMPTimeout(f"event {name or '*'} not seen within {timeout} s")
            msg = self._read_msg(left)
            if "event" not in msg:
                continue
            if ok(msg):
                return msg
            self.events.append(msg)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] in ("-h", "--help"):
        print(__doc__.strip().split("\n\n")[0], file=sys.stderr)
        print(f"usage: {os.path.basename(argv[0])} SOCKET COMMAND [JSON-ARGS]", file=sys.stderr)
        return 2
    args = json.loads(argv[3]) if len(argv) > 3 else None
    try:
        with QMPClient(argv[1], connect_timeout=5.0) as q:
            ret = q.execute(argv[2], args)
    except QMPError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(ret, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
