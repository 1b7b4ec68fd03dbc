from __future__ import annotations

import asyncio

import tideloop


async def handle(reader: tideloop.StreamReader, writer: tideloop.StreamWriter) -> None:
    data: bytes = await reader.readline()
    writer.write(data)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def main() -> int:
    server = await tideloop.start_server(handle, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    reader, writer = await tideloop.open_connection("127.0.0.1", port)
    writer.write(b"ping\n")
    echoed: bytes = await reader.readexactly(5)
    writer.close()
    server.close()
    loop: asyncio.AbstractEventLoop = asyncio.get_running_loop()
    loop.set_slow_callback_hook(None)  # type: ignore[attr-defined]
    m: tideloop.LoopMetrics = tideloop.metrics()
    p99: float = m.lag.percentile(99)
    return len(echoed) + int(p99 >= 0)


result: int = tideloop.run(main())
loop2: tideloop.EventLoop = tideloop.new_event_loop()
loop2.close()
flag: bool = tideloop.COMPILED
version: str = tideloop.__version__
with asyncio.Runner(loop_factory=tideloop.new_event_loop) as runner:
    runner.run(main())
