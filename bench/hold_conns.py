#!/usr/bin/env python3
"""Idle client connections, for the RSS rows of bench/run.sh.

Usage: hold_conns.py PORT COUNT [TOKEN]

Opens COUNT connections to 127.0.0.1:PORT one after the other; on each it sends one chat completion and reads
the whole answer, so every connection has served a request and sits idle in keep-alive (the common case of a
pool of clients between requests). Then prints "HELD <open> <failed>" and keeps them open until it is
terminated. Raises its own open-file limit to the hard limit.
"""
import resource
import signal
import socket
import sys

BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'


def read_response(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is None:
        raise ValueError("no Content-Length")
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed")
        rest += data
    return status


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    port, count = int(sys.argv[1]), int(sys.argv[2])
    token = sys.argv[3] if len(sys.argv) > 3 else ""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    head = ("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(BODY)}\r\n")
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    req = (head + "\r\n").encode() + BODY
    held, failed = [], 0
    for _ in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(req)
            if read_response(s) != 200:
                failed += 1
            held.append(s)
        except (OSError, ValueError, ConnectionError, IndexError) as e:
            failed += 1
            if failed == 1:
                print(f"hold_conns: first failure: {e!r}", file=sys.stderr)
    print(f"HELD {len(held)} {failed}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
