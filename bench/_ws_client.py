#!/usr/bin/env python3
"""WebSocket echo load generator for bench/frameworks.py: plain sockets, one thread, epoll.

    _ws_client.py -p PORT -c CONNS -s SIZE -w WARMUP -d DURATION [-P SERVER_PID] [--hold]

The command line and the output ("requests=N elapsed=S client_cpu=S server_cpu=S
server_sched=S server_user=S lost=0" on one line) are bench/c/loadgen.c's, so echo.py's and
instructions.py's load functions drive it unchanged. CONNS connections each do the opening
handshake (a fixed GET with Upgrade: websocket, no extensions offered, so no compression),
then run a closed loop: send one pre-built masked binary frame of SIZE bytes (< 126), wait
for the whole unmasked echo frame (2 + SIZE bytes), count a round trip, send again. After
WARMUP seconds it reads the server's CPU times from /proc (as loadgen.c does), runs DURATION
seconds and reads them again. Nothing per message is built at run time: the client's cost is
one send() and one or more recv() per round trip.

--hold (frameworks.py --instructions): the load stops between the phases so the server can be
measured idle. After WARMUP seconds no more frames are sent; once every echo is in, it prints
"PAUSED" and waits for a line on stdin; then it runs DURATION seconds, again stops sending and
waits for the outstanding echoes (counted: the server did that work), prints the result line
and keeps the connections open until stdin gives another line or closes.
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import socket
import sys
import time

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's sample key; the server's answer is not checked


def server_cpu(pid: int) -> tuple[float, float, float]:
    """(utime+stime, summed schedstat of its threads, utime) of pid, in seconds."""
    if not pid:
        return 0.0, 0.0, 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    sched = 0.0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                sched += int(f.read().split()[0]) * 1e-9
        except OSError:
            pass
    return (int(fields[11]) + int(fields[12])) / tick, sched, int(fields[11]) / tick


def own_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def handshake(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (port, KEY)
    )
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("server closed the connection during the handshake")
        got += chunk
    if not got.startswith(b"HTTP/1.1 101"):
        status = got.split(b"\r\n", 1)[0]
        raise SystemExit(f"handshake refused: {status!r}")
    if got.index(b"\r\n\r\n") + 4 != len(got):
        raise SystemExit("unexpected data after the handshake")
    s.setblocking(False)
    return s


def phase(poll, by_fd: dict, frame: bytes, reply_len: int, seconds: float) -> int:
    """--hold: send one frame on every connection, echo-loop for seconds, then stop sending
    and wait for the echoes still due; -> round trips completed."""
    pending = {}  # fd -> bytes of the reply still to come
    for fd, s in by_fd.items():
        pending[fd] = reply_len
        s.send(frame)
    count = 0
    deadline = time.monotonic() + seconds
    sending = True
    while pending:
        for fd, _ in poll(0.5):
            s = by_fd[fd]
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                raise SystemExit("server closed a connection")
            left = pending[fd] - len(data)
            if left > 0:
                pending[fd] = left
                continue
            if left < 0:
                raise SystemExit(f"got {-left} bytes more than one echo frame")
            count += 1
            if sending:
                pending[fd] = reply_len
                s.send(frame)
            else:
                del pending[fd]
        if sending and time.monotonic() >= deadline:
            sending = False
    return count


def run_held(args, socks: list, frame: bytes, reply_len: int) -> int:
    ep = select.epoll()
    by_fd = {}
    for s in socks:
        ep.register(s.fileno(), select.EPOLLIN)
        by_fd[s.fileno()] = s
    phase(ep.poll, by_fd, frame, reply_len, args.warmup)
    print("PAUSED", flush=True)
    sys.stdin.readline()
    start = server_cpu(args.pid)
    cli0 = own_cpu()
    t_start = time.monotonic()
    count = phase(ep.poll, by_fd, frame, reply_len, args.duration)
    elapsed = time.monotonic() - t_start
    end = server_cpu(args.pid)
    cli = own_cpu() - cli0
    print(
        f"requests={count} elapsed={elapsed:.6f} client_cpu={cli:.6f} "
        f"server_cpu={end[0] - start[0]:.6f} server_sched={end[1] - start[1]:.6f} "
        f"server_user={end[2] - start[2]:.6f} lost=0",
        flush=True,
    )
    sys.stdin.readline()
    for s in socks:
        s.close()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-p", type=int, required=True, dest="port")
    ap.add_argument("-c", type=int, default=10, dest="conns")
    ap.add_argument("-s", type=int, default=13, dest="size")
    ap.add_argument("-w", type=float, default=0.3, dest="warmup")
    ap.add_argument("-d", type=float, default=1.0, dest="duration")
    ap.add_argument("-P", type=int, default=0, dest="pid")
    ap.add_argument("--hold", action="store_true", help="pause between the phases (see above)")
    args = ap.parse_args()
    if not 0 < args.size < 126:
        raise SystemExit("-s must be 1..125 (one-byte payload length)")
    mask = b"\x12\x34\x56\x78"
    payload = bytes(i % 251 for i in range(args.size))
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    frame = bytes([0x82, 0x80 | args.size]) + mask + masked  # FIN, binary, masked
    reply_len = 2 + args.size

    socks = [handshake(args.port) for _ in range(args.conns)]
    if args.hold:
        return run_held(args, socks, frame, reply_len)
    ep = select.epoll()
    by_fd = {}
    pending = {}  # fd -> bytes of the reply still to come
    for s in socks:
        ep.register(s.fileno(), select.EPOLLIN)
        by_fd[s.fileno()] = s
        pending[s.fileno()] = reply_len
        s.send(frame)

    count = 0
    t0 = time.monotonic()
    phase_end = t0 + args.warmup
    measuring = False
    start = (0.0, 0.0, 0.0)
    cli0 = 0.0
    t_start = t0
    poll = ep.poll
    while True:
        for fd, _ in poll(0.5):
            s = by_fd[fd]
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                raise SystemExit("server closed a connection")
            left = pending[fd] - len(data)
            if left > 0:
                pending[fd] = left
                continue
            if left < 0:
                raise SystemExit(f"got {-left} bytes more than one echo frame")
            pending[fd] = reply_len
            count += 1
            s.send(frame)
        now = time.monotonic()
        if now >= phase_end:
            if measuring:
                end = server_cpu(args.pid)
                cli = own_cpu() - cli0
                break
            measuring = True
            start = server_cpu(args.pid)
            cli0 = own_cpu()
            count = 0
            t_start = now
            phase_end = now + args.duration
    elapsed = now - t_start
    print(
        f"requests={count} elapsed={elapsed:.6f} client_cpu={cli:.6f} "
        f"server_cpu={end[0] - start[0]:.6f} server_sched={end[1] - start[1]:.6f} "
        f"server_user={end[2] - start[2]:.6f} lost=0"
    )
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
