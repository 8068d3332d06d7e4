#!/usr/bin/env python3
"""Streaming time to first byte, for bench/run.sh.

Usage: ttfb.py PORT COUNT [TOKEN]

Sends COUNT streaming chat completions ("stream": true) one after the other over one keep-alive connection to
127.0.0.1:PORT (a new connection only when the server closes one) and measures, for each, the time from the
start of the request's write to the first byte of the response read. The first 50 exchanges warm up and are
not counted. Every response must be a 200 with a complete body (Content-Length or chunked), else it is counted
as an error. Prints one line:
  TTFB n=.. p50_us=.. p90_us=.. p99_us=.. max_us=.. total_p50_us=.. errors=..
"""
import socket
import sys
import time

WARMUP = 50
BODY = b'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hello"}]}'


def request_bytes(token):
    lines = [
        "POST /v1/chat/completions HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        "Accept: text/event-stream",
        f"Content-Length: {len(BODY)}",
    ]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + BODY


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the server")
        self.buf += data

    def take_until(self, marker):
        while marker not in self.buf:
            self.fill()
        head, _, self.buf = self.buf.partition(marker)
        return head

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def exchange(self, req):
        """Returns (status, ttfb seconds, total seconds, keep_alive)."""
        start = time.perf_counter()
        self.sock.sendall(req)
        if not self.buf:
            self.fill()
        first = time.perf_counter()
        head = self.take_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(head[0].split(" ")[1])
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self.take_until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    self.take_until(b"\r\n")  # no trailers expected: the empty line ends the body
                    break
                self.take(size + 2)
        elif "content-length" in headers:
            self.take(int(headers["content-length"]))
        else:
            raise ValueError("response without a length")
        keep = headers.get("connection", "").lower() != "close"
        return status, first - start, time.perf_counter() - start, keep


def percentile(sorted_values, p):
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values))) - 1))
    return sorted_values[index]


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    port, count = int(sys.argv[1]), int(sys.argv[2])
    req = request_bytes(sys.argv[3] if len(sys.argv) > 3 else "")
    conn = None
    ttfb, total = [], []
    errors = 0
    for i in range(WARMUP + count):
        try:
            if conn is None:
                conn = Conn(port)
            status, first, whole, keep = conn.exchange(req)
            if status != 200:
                errors += 1
            elif i >= WARMUP:
                ttfb.append(first)
                total.append(whole)
            if not keep:
                conn.sock.close()
                conn = None
        except (OSError, ValueError, ConnectionError, IndexError) as e:
            errors += 1
            if errors == 1:
                print(f"ttfb: first error: {e!r}", file=sys.stderr)
            if conn is not None:
                conn.sock.close()
            conn = None
    ttfb.sort()
    total.sort()
    us = lambda s: int(round(s * 1e6))  # noqa: E731
    print(f"TTFB n={len(ttfb)} p50_us={us(percentile(ttfb, 50))} p90_us={us(percentile(ttfb, 90))} "
          f"p99_us={us(percentile(ttfb, 99))} max_us={us(ttfb[-1] if ttfb else 0)} "
          f"total_p50_us={us(percentile(total, 50))} errors={errors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
