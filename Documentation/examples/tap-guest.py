#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stand-in for a guest behind QEMU, for traced-handover.sh.

  tap-guest.py source IFNAME   make TAP IFNAME (in the current netns), bring
                               it up, print "pid P fd F", then write one
                               frame per ms to it; on SIGUSR1 stop writing
                               (the "VM stop"), on SIGTERM exit
  tap-guest.py successor N     take the TAP fd from fd-handover take
                               (LISTEN_FDS, fd 3), end the source (SIGTERM
                               to $SOURCE_PID), write N frames, one per ms,
                               exit

Frames go to 02:00:00:00:00:01 (nobody) with the local experimental
ethertype 0x88b5: the TAP's namespace drops them after the tracepoint.
"""
import fcntl
import os
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

FRAME = bytes.fromhex("020000000001" "020000000002" "88b5") + bytes(46)


def make_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ifr = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH", name.encode(), 0))
    flags = struct.unpack("16sH", ifr[:18])[1] | IFF_UP
    fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH", name.encode(), flags))
    s.close()
    return fd


def send(fd, frames, running=lambda: True):
    """One frame per ms on an absolute schedule; stops when running() is false."""
    t = time.monotonic_ns()
    for i in range(frames):
        if not running():
            return
        os.write(fd, FRAME)
        t += 1_000_000
        delay = t - time.monotonic_ns()
        if delay > 0:
            time.sleep(delay / 1e9)


def source(name):
    fd = make_tap(name)
    paused = False

    def pause(signum, frame):
        nonlocal paused
        paused = True

    signal.signal(signal.SIGUSR1, pause)
    print(f"pid {os.getpid()} fd {fd}", flush=True)
    send(fd, 60_000, lambda: not paused)  # at most a minute
    while True:  # paused: wait for the successor's SIGTERM
        signal.pause()


def successor(frames):
    if os.environ.get("LISTEN_FDS") != "1":
        sys.exit("successor: expected one fd from fd-handover take (LISTEN_FDS=1)")
    os.kill(int(os.environ["SOURCE_PID"]), signal.SIGTERM)
    send(3, frames)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "source":
        source(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "successor":
        successor(int(sys.argv[2]))
    else:
        sys.exit(__doc__)
