"""Two man-in-the-middle proxies that make test_faults.py's phases deterministic.

QmpProxy      between `fd-handover upgrade` and the source's QMP socket.  It
              forwards every line both ways, records the source's events, and
              can hold one command of the driver's (x-query-fd-handover,
              migrate, quit): a hook runs first (the fault), then decides
              whether the command goes on.  A held command is a point of the
              driver's sequence that nothing else can pass.  Its connection
              to the source outlives the driver's: execute() asks the source
              itself afterwards (the source's listening monitor sockets are
              the target's too once it inherited them, so a new connection
              by path may reach either).
StreamProxy   between the source and the target on the migration socket
              (WORKDIR/migrate.sock: the target's listener is renamed
              migrate.sock.target and the proxy listens in its place before
              the source's `migrate` is let through).  Each direction can be
              held: source -> target ("down": device state, then the 8-byte
              commit) and target -> source ("up": the return path, where the
              target's SHUT says "loaded").  Holding "up" at the SHUT keeps the
              target loaded and waiting for the commit while the source has
              not taken it; holding "down" after the SHUT keeps the commit the
              source wrote (it reports completed) from the target.

When the source's side closes, what the proxy held from it is still
delivered (what the kernel would have queued for the target before the
close), then the target's side closed: at once, or when the cell lets the
held bytes go: a source that dies after writing its commit still commits.
When the target's side closes, what the proxy held from it is dropped and
the source's side closed at once (see _pump).

Standard library only; each proxy serves one connection and every wait is
bounded.
"""
from __future__ import annotations

import json
import os
import socket
import struct
import threading
import time
from typing import Callable, Optional

MIG_RP_MSG_SHUT = 1     # migration/migration.c enum mig_rp_message_type
MIG_RP_MSG_PONG = 2
COMMIT = b"FDHCOMIT"    # patch 0009: the source's commit after QEMU_VM_EOF


def _listen(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    s.settimeout(60)
    return s


def _close(*socks) -> None:
    for s in socks:
        if s is None:
            continue
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass


class QmpProxy:
    """Listen on `path`; on the first connection, connect to `upstream` and
    forward.  hooks: {command: fn(proxy, line)}; each runs once, in place of
    forwarding the command's line (fn calls proxy.send_up(line) to let it go
    on).  An exception in a hook is kept in .errors and the line goes on.
    on_close: fn(proxy), run once when the source closes its monitor,
    before the driver sees it close."""

    def __init__(self, path: str, upstream: str,
                 hooks: Optional[dict] = None,
                 on_close: Optional[Callable[["QmpProxy"], None]] = None):
        self.path = path
        self.upstream = upstream
        self.hooks = dict(hooks or {})
        self.on_close = on_close
        self.events: list = []          # (mono, message) from the source
        self.commands: list = []        # (mono, command) from the driver
        self.errors: list = []
        self.cond = threading.Condition()
        self.cli: Optional[socket.socket] = None
        self.up: Optional[socket.socket] = None
        self.done = False               # the source's side closed
        self.replies: dict = {}         # our own commands' replies, by id
        self.n = 0
        self.lst = _listen(path)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            self.cli, _ = self.lst.accept()
            self.cli.settimeout(None)
            self.up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.up.connect(self.upstream)
        except OSError as e:
            self.errors.append("qmp proxy: %s" % e)
            self.close()
            return
        threading.Thread(target=self._from_source, daemon=True).start()
        buf = b""
        while True:
            try:
                data = self.cli.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                line += b"\n"
                try:
                    cmd = json.loads(line).get("execute", "")
                except ValueError:
                    cmd = ""
                with self.cond:
                    self.commands.append((time.monotonic(), cmd))
                    self.cond.notify_all()
                hook = self.hooks.pop(cmd, None)
                if hook is None:
                    self.send_up(line)
                    continue
                try:
                    hook(self, line)
                except Exception as e:  # noqa: BLE001 (reported by the cell)
                    self.errors.append("hook on %s: %s: %s" % (cmd, type(e).__name__, e))
                    self.send_up(line)
        _close(self.cli)        # the source's side stays, for execute()

    def send_up(self, line: bytes) -> None:
        try:
            self.up.sendall(line)
        except (OSError, AttributeError):
            pass

    def _from_source(self) -> None:
        buf = b""
        while True:
            try:
                data = self.up.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    msg = {}
                if str(msg.get("id", "")).startswith("fm-"):
                    with self.cond:
                        self.replies[msg["id"]] = msg
                        self.cond.notify_all()
                    continue
                try:
                    self.cli.sendall(line + b"\n")
                except OSError:
                    pass
                if "event" in msg:
                    with self.cond:
                        self.events.append((time.monotonic(), msg))
                        self.cond.notify_all()
        if self.on_close is not None:
            try:
                self.on_close(self)
            except Exception as e:  # noqa: BLE001 (reported by the cell)
                self.errors.append("on close: %s: %s" % (type(e).__name__, e))
        self.close()

    def execute(self, cmd: str, args: Optional[dict] = None, timeout: float = 15.0) -> dict:
        """Run cmd on the source over the proxy's own connection (once the
        driver is gone); its reply ({"return": ...} or {"error": ...}), or
        {"error": {"desc": why}} when the source is gone or silent."""
        with self.cond:
            self.n += 1
            mid = "fm-%d" % self.n
        msg = {"execute": cmd, "id": mid}
        if args:
            msg["arguments"] = args
        try:
            self.up.sendall(json.dumps(msg).encode() + b"\n")
        except (OSError, AttributeError) as e:
            return {"error": {"desc": "the source's monitor: %s" % e}}
        end = time.monotonic() + timeout
        with self.cond:
            while mid not in self.replies:
                left = end - time.monotonic()
                if self.done:
                    return {"error": {"desc": "the source's monitor closed"}}
                if left <= 0:
                    return {"error": {"desc": "no reply within %.0f s" % timeout}}
                self.cond.wait(min(left, 0.05))
            return self.replies.pop(mid)

    def wait_event(self, pred: Callable[[dict], bool], timeout: float) -> Optional[dict]:
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for _, m in self.events:
                    if pred(m):
                        return m
                left = end - time.monotonic()
                if left <= 0 or self.done:
                    return None
                self.cond.wait(min(left, 0.05))

    def migration_status(self, status: str, timeout: float) -> Optional[dict]:
        return self.wait_event(lambda m: m.get("event") == "MIGRATION" and
                               m.get("data", {}).get("status") == status, timeout)

    def close(self) -> None:
        with self.cond:
            self.done = True
            self.cond.notify_all()
        _close(self.cli, self.up, self.lst)
        try:
            os.unlink(self.path)
        except OSError:
            pass


class StreamProxy:
    """Put ourselves on WORKDIR/migrate.sock, between the source (which will
    connect there) and the target (listening, renamed to .target)."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, "migrate.sock")
        self.real = self.path + ".target"
        os.rename(self.path, self.real)
        self.lst = _listen(self.path)
        self.lock = threading.Condition()
        self.hold = {"down": False, "up": False}
        self.held = {"down": bytearray(), "up": bytearray()}
        self.log = {"down": bytearray(), "up": bytearray()}
        self.t_last = {"down": 0.0, "up": 0.0}
        self.eof = {"down": False, "up": False}
        self.src: Optional[socket.socket] = None
        self.tgt: Optional[socket.socket] = None
        self.errors: list = []
        self.dropped: list = []
        self.timeline: list = []    # (mono, direction, bytes, held, last 8 bytes)
        self.close_on_release = False
        # Hold "down" from the target's first PONG on: a source with patch
        # 0030 stops the VM only once the target answered the PING of the
        # stream header, so its device state comes after that PONG.
        self.hold_down_after_pong = False
        # Hold "up" from the target's SHUT on (its PONG before must pass:
        # the source stops and sends its device state only after it).
        self.hold_up_from_shut = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            self.src, _ = self.lst.accept()
            self.src.settimeout(None)
            self.tgt = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.tgt.connect(self.real)
        except OSError as e:
            self.errors.append("stream proxy: %s" % e)
            _close(self.src, self.tgt)
            with self.lock:
                self.eof["down"] = self.eof["up"] = True
                self.lock.notify_all()
            return
        threading.Thread(target=self._pump, args=("up",), daemon=True).start()
        self._pump("down")

    def _ends(self, d: str) -> tuple:
        return (self.src, self.tgt) if d == "down" else (self.tgt, self.src)

    def _pump(self, d: str) -> None:
        a, b = self._ends(d)
        while True:
            try:
                data = a.recv(65536)
            except OSError:
                data = b""
            with self.lock:
                if not data:
                    # A source that closed had written what we hold: the
                    # target gets it, then the close.  What we hold of a
                    # target that closed is dropped: delivering it before
                    # the close would let the source answer a target that
                    # is gone (its commit would land in our socket, not
                    # fail).  A cell that wants the source to have the
                    # SHUT of a dead target freezes the source first and
                    # releases it itself.
                    self.eof[d] = True
                    self.lock.notify_all()
                    if d == "down" and self.hold[d]:
                        # Delivered, then closed, when the cell lets go.
                        self.close_on_release = True
                        _close(a)
                        return
                    if d == "down" and self.held[d]:
                        self._send(b, bytes(self.held[d]))
                    self.held[d].clear()
                    _close(b, a)
                    return
                self.log[d] += data
                self.t_last[d] = time.monotonic()
                self.timeline.append((self.t_last[d], d, len(data), self.hold[d],
                                      bytes(data[-8:])))
                if d == "up" and self.hold_up_from_shut and \
                        self._rp_seen(MIG_RP_MSG_SHUT):
                    self.hold["up"] = True
                    self.hold_up_from_shut = False
                if d == "up" and self.hold_down_after_pong and \
                        self._rp_seen(MIG_RP_MSG_PONG):
                    # before the source can read it and stop
                    self.hold["down"] = True
                    self.hold_down_after_pong = False
                if self.hold[d]:
                    self.held[d] += data
                else:
                    self._send(b, data)
                self.lock.notify_all()

    def _send(self, sock, data: bytes) -> None:
        """A side that is gone takes nothing: as the kernel would drop it."""
        try:
            sock.sendall(data)
        except OSError as e:
            self.dropped.append("%d bytes: %s" % (len(data), e))

    def set_hold(self, d: str, on: bool) -> None:
        with self.lock:
            self.hold[d] = on
            if on:
                return
            _, b = self._ends(d)
            if self.held[d] and b is not None:
                self._send(b, bytes(self.held[d]))
            self.held[d].clear()
            if d == "down" and self.close_on_release:
                _close(self.tgt, self.src)

    def _rp_seen(self, msg: int) -> bool:
        buf, off = bytes(self.log["up"]), 0
        while off + 4 <= len(buf):
            typ, ln = struct.unpack_from(">HH", buf, off)
            if typ == msg and off + 4 + ln <= len(buf):
                return True
            off += 4 + ln
        return False

    def shut_seen(self) -> bool:
        """The target's SHUT ("loaded") is among the return-path bytes."""
        return self._rp_seen(MIG_RP_MSG_SHUT)

    def wait(self, pred: Callable[["StreamProxy"], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self.lock:
            while not pred(self):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(min(left, 0.02))
            return True

    def close(self) -> None:
        _close(self.src, self.tgt, self.lst)


__all__ = ["QmpProxy", "StreamProxy", "COMMIT", "MIG_RP_MSG_SHUT"]
