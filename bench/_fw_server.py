"""Framework servers for bench/frameworks.py, run as a subprocess with the venv python of a row.

    python -I _fw_server.py --app APP --loop asyncio|uvloop|tideloop [--compiled 0|1]
        [--poller NAME] [--port PORT] [--cold-malloc]

APP is one of:

    uvicorn-httptools  uvicorn.Server(Config(app, loop="none", http="httptools")).serve()
    uvicorn-h11        the same with http="h11"
    aiohttp            aiohttp.web.Application, one GET route, web.AppRunner + web.TCPSite
    websockets         websockets.asyncio.server.serve(), echoes every message back
    twowrite           asyncio.Protocol + httptools parser like _http_server.py, but each
                       response is two transport.write() calls: the headers, then the body

Every HTTP app answers "200 OK" with the 13-byte body "Hello, World!" and keeps the
connection alive. The loop is made by _echo_server.make_loop() (asyncio.new_event_loop(),
uvloop.new_event_loop() or tideloop.new_event_loop()) and runs the framework's server on it
with run_until_complete/run_forever: uvicorn is given loop="none" and a listening socket, so
it neither picks a loop nor binds itself. Start-up, READY/NA lines and the exit on stdin
close are _echo_server.py's.

Every app counts what it handles in HANDLED: HTTP requests (ASGI app calls, aiohttp handler
calls, twowrite responses) or WebSocket messages echoed. SIGUSR1 makes the server print
"HANDLED <n>" on stdout (a loop signal handler, so nothing per request but the increment):
frameworks.py --instructions divides the instructions by the change of that count, not by
the load generator's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I drops the script dir
from _echo_server import BACKLOG, NotAvailable, make_loop, serve, warm_malloc  # noqa: E402

BODY = b"Hello, World!"
APPS = ("uvicorn-httptools", "uvicorn-h11", "aiohttp", "websockets", "twowrite")
HANDLED = 0  # requests / messages handled; printed on SIGUSR1


def _print_handled() -> None:
    print(f"HANDLED {HANDLED}", flush=True)


def _listen(port: int) -> socket.socket:
    # proto=IPPROTO_TCP, not 0: asyncio's transports set TCP_NODELAY only on sockets whose
    # .proto says TCP (accepted sockets inherit it). With proto 0 uvicorn's two writes per
    # response (headers, body) meet Nagle and delayed ACKs: 40 ms per request on asyncio.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


# --- uvicorn ---------------------------------------------------------------------------------


async def asgi_app(scope, receive, send):
    global HANDLED
    if scope["type"] != "http":
        return
    HANDLED += 1
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
        }
    )
    await send({"type": "http.response.body", "body": BODY})


async def start_uvicorn(port: int, http: str) -> int:
    try:
        import uvicorn
    except ImportError as e:
        raise NotAvailable(f"uvicorn not installed: {e}") from None
    config = uvicorn.Config(
        asgi_app,
        loop="none",
        http=http,
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=BACKLOG,
    )
    server = uvicorn.Server(config)
    sock = _listen(port)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    # SIGTERM makes uvicorn shut down gracefully; the process then ends with it.
    task.add_done_callback(lambda t: os._exit(0 if not t.cancelled() and not t.exception() else 1))
    while not server.started:
        if task.done():
            raise NotAvailable(f"uvicorn did not start: {task.exception()!r}")
        await asyncio.sleep(0.01)
    return sock.getsockname()[1]


# --- aiohttp ---------------------------------------------------------------------------------


async def start_aiohttp(port: int) -> int:
    try:
        from aiohttp import web
    except ImportError as e:
        raise NotAvailable(f"aiohttp not installed: {e}") from None

    async def hello(request):
        global HANDLED
        HANDLED += 1
        return web.Response(body=BODY, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=BACKLOG)
    await site.start()
    return runner.addresses[0][1]


# --- websockets ------------------------------------------------------------------------------


async def start_websockets(port: int) -> int:
    try:
        from websockets.asyncio.server import serve as ws_serve
    except ImportError as e:
        raise NotAvailable(f"websockets not installed: {e}") from None

    async def echo(ws):
        global HANDLED
        async for message in ws:
            await ws.send(message)
            HANDLED += 1

    server = await ws_serve(echo, "127.0.0.1", port, compression=None, backlog=BACKLOG)
    return server.sockets[0].getsockname()[1]


# --- two writes per response -----------------------------------------------------------------

HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(BODY)


class TwoWriteProtocol(asyncio.Protocol):
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
        global HANDLED
        HANDLED += 1
        self.transport.write(HEADERS)
        self.transport.write(BODY)
        if not self.parser.should_keep_alive():
            self.transport.close()


async def start_twowrite(port: int) -> int:
    try:
        import httptools
    except ImportError as e:
        raise NotAvailable(f"httptools not installed: {e}") from None
    parser_class = httptools.HttpRequestParser
    server = await asyncio.get_running_loop().create_server(
        lambda: TwoWriteProtocol(parser_class), "127.0.0.1", port, backlog=BACKLOG
    )
    return server.sockets[0].getsockname()[1]


async def start(app: str, port: int) -> int:
    port = await _starter(app, port)
    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _print_handled)
    except (NotImplementedError, RuntimeError, ValueError):
        pass  # no count to read: frameworks.py --instructions reports the run as failed
    return port


def _starter(app: str, port: int):
    if app == "uvicorn-httptools":
        return start_uvicorn(port, "httptools")
    if app == "uvicorn-h11":
        return start_uvicorn(port, "h11")
    if app == "aiohttp":
        return start_aiohttp(port)
    if app == "websockets":
        return start_websockets(port)
    return start_twowrite(port)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--app", required=True, choices=APPS)
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
    except (NotAvailable, ImportError, ValueError) as e:
        print(f"NA {type(e).__name__}: {e}"[:200], flush=True)
        os._exit(3)
    info["app"] = args.app
    serve(loop, info, lambda: start(args.app, args.port))


if __name__ == "__main__":
    main()
