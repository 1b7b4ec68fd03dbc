"""Minimal HTTP/1.1 keep-alive server on httptools, for bench/echo.py (driven by wrk).

    python -I _http_server.py --loop asyncio|uvloop|tideloop [--compiled 0|1] [--poller NAME]
        [--port PORT] [--cold-malloc]

An asyncio.Protocol feeds what it receives to an httptools.HttpRequestParser; every complete
request gets "200 OK" with a 13-byte body; the connection stays open unless the request
asked to close it. Start-up, READY/NA lines and shutdown are _echo_server.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I drops the script dir
from _echo_server import BACKLOG, NotAvailable, make_loop, serve, warm_malloc  # noqa: E402

BODY = b"Hello, World!"
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
            % (len(BODY), BODY))


class HttpProtocol(asyncio.Protocol):
    def __init__(self, parser_class):
        self.parser = parser_class(self)

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        try:
            self.parser.feed_data(data)
        except Exception:  # httptools.HttpParserError and friends: drop the connection
            self.transport.close()

    def on_message_complete(self):
        self.transport.write(RESPONSE)
        if not self.parser.should_keep_alive():
            self.transport.close()


async def start(port: int) -> int:
    try:
        import httptools
    except ImportError as e:
        raise NotAvailable(f"httptools not installed: {e}") from None
    parser_class = httptools.HttpRequestParser
    server = await asyncio.get_running_loop().create_server(
        lambda: HttpProtocol(parser_class), "127.0.0.1", port, backlog=BACKLOG)
    return server.sockets[0].getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loop", required=True, choices=("asyncio", "uvloop", "tideloop"))
    ap.add_argument("--compiled", choices=("0", "1"), help="require tideloop.COMPILED")
    ap.add_argument("--poller", help="tideloop backend (TIDELOOP_POLLER), e.g. io_uring")
    ap.add_argument("--eager-writes", action="store_true",
                    help="tideloop: TIDELOOP_DEFER_WRITES=0 (each write sent at once)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cold-malloc", action="store_true", help="skip warm_malloc()")
    args = ap.parse_args()
    if not args.cold_malloc:
        warm_malloc()
    try:
        loop, info = make_loop(args.loop, args.compiled, args.poller, args.eager_writes)
    except (NotAvailable, ImportError) as e:
        print(f"NA {type(e).__name__}: {e}"[:200], flush=True)
        os._exit(3)
    info["proto"] = "http"
    serve(loop, info, lambda: start(args.port))


if __name__ == "__main__":
    main()
