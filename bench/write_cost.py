"""What a second socket write per answer costs on this machine (docs/performance.md, item 34).

A sender answers N small requests on one loopback TCP connection, each answer sent as a head
and a body (two writes, as uvicorn does) or as one write; a second process plays the client.
Prints the sender's and the receiver's user and system CPU per answer, alternating the two
ways twice:

    .venv/bin/python bench/write_cost.py [N]
"""

from __future__ import annotations

import os
import resource
import socket
import sys

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 300\r\ncontent-type: application/octet-stream\r\n\r\n"
BODY = b"x" * 300


def _cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def _shown(label: str, before: tuple[float, float], after: tuple[float, float], n: int) -> str:
    user, system = ((b - a) * 1e6 / n for a, b in zip(before, after, strict=True))
    return f"{label} {user:5.2f} µs user + {system:5.2f} µs system per answer"


def _client(address: tuple[str, int], n: int) -> None:
    with socket.create_connection(address) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        want, got = n * (len(HEAD) + len(BODY)), 0
        before = _cpu()
        sock.send(b"?")
        while got < want:
            got += len(sock.recv(65536))
            sock.send(b"?")  # the next request
        print("   receiver", _shown("", before, _cpu(), n), flush=True)


def run(n: int, two_writes: bool) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        pid = os.fork()
        if pid == 0:
            _client(listener.getsockname(), n)
            os._exit(0)
        sock, _ = listener.accept()
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        before = _cpu()
        for _ in range(n):
            sock.recv(16)
            if two_writes:
                sock.send(HEAD)
                sock.send(BODY)
            else:
                sock.send(HEAD + BODY)
        after = _cpu()
        os.waitpid(pid, 0)
    print(_shown("two writes: sender" if two_writes else "one write:  sender", before, after, n))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    for two_writes in (True, False, True, False):
        run(n, two_writes)


if __name__ == "__main__":
    main()
