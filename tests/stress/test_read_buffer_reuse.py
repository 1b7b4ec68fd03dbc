"""Bytes passed to ``data_received`` stay intact however the protocol keeps them.

tideloop's compiled build recycles the bytes object of a read once ``data_received`` has
returned, if nothing else references it: the next read of the same length reuses it. This
must never be visible. The peer sends chunks one at a time (each acknowledged, so every
read is exactly one chunk), 1000 B to 64 KiB long, and the protocol alternately drops a
chunk (after hashing it, which caches its hash) and keeps the next one of the same size in
one of many ways: dict key (found again by an equal object) or value, list, tuple, set,
frozenset, deque, slots object, slices, ``bytes(data)``, ``memoryview`` (whole, sliced,
cast), ``io.BytesIO``, a zlib compressor, ``asyncio.Queue``, a future's result, a
``call_soon`` argument, a context variable, a hashlib object, ``struct.iter_unpack`` and a
``functools.partial`` of ``struct.unpack_from``, a closure, exception args, a traceback's
frame, a suspended generator, a regex match, an iterator, a ``ctypes.c_char_p`` (read back
from the raw memory) and ``transport.write()`` to a connection whose peer does not read (the
write buffer). After all the chunks, everything kept is compared with what was sent.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import ctypes
import functools
import hashlib
import io
import random
import re
import struct
import sys
import types
import zlib
from collections.abc import Callable
from typing import Any

from _support import connected_pair

HOST = "127.0.0.1"
SIZES = (1000, 4096, 20_000, 65_536)  # recycled: over 512 bytes, at most 64 KiB
ROUNDS = 1 if sys.implementation.name == "pypy" else 3  # PyPy: slower, and no recycling

Recover = Callable[[], Any]
VAR: contextvars.ContextVar[bytes] = contextvars.ContextVar("VAR")


class Slotted:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def _generator() -> Any:
    data = yield
    yield
    yield data


def keep_dict_key(data: bytes) -> Recover:
    d = {data: 1}

    def recover() -> bytes:
        (key,) = d
        # Found again through an equal, fresh object: the key's hash still fits its bytes.
        return key if bytes(bytearray(key)) in d else b"lookup failed"

    return recover


def keep_dict_value(data: bytes) -> Recover:
    d = {"k": data}
    return lambda: d["k"]


def keep_list(data: bytes) -> Recover:
    lst = [data]
    return lambda: lst[0]


def keep_tuple(data: bytes) -> Recover:
    t = [(1, data)]
    return lambda: t[0][1]


def keep_set(data: bytes) -> Recover:
    s = {data}
    return lambda: next(iter(s))


def keep_frozenset(data: bytes) -> Recover:
    s = frozenset([data])
    return lambda: next(iter(s))


def keep_deque(data: bytes) -> Recover:
    d = collections.deque([data], maxlen=1)
    return lambda: d[0]


def keep_slots(data: bytes) -> Recover:
    o = Slotted(data)
    return lambda: o.data


def keep_namespace(data: bytes) -> Recover:
    o = types.SimpleNamespace(data=data)
    return lambda: o.data


def keep_full_slice(data: bytes) -> Recover:
    s = data[:]
    return lambda: s


def keep_bytes_call(data: bytes) -> Recover:
    b = bytes(data)
    return lambda: b


def keep_join(data: bytes) -> Recover:
    b = b"".join([data])
    return lambda: b


def keep_memoryview(data: bytes) -> Recover:
    mv = memoryview(data)
    return lambda: mv.tobytes()


def keep_memoryview_slice(data: bytes) -> Recover:
    mv = memoryview(data)[100:-100]
    return lambda: ("slice", mv.tobytes())


def keep_memoryview_cast(data: bytes) -> Recover:
    mv = memoryview(data).cast("I")
    return lambda: struct.pack(f"{len(mv)}I", *mv)


def keep_bytesio(data: bytes) -> Recover:
    f = io.BytesIO(data)
    return lambda: f.getvalue()


def keep_zlib(data: bytes) -> Recover:
    c = zlib.compressobj()
    head = c.compress(data)
    return lambda: zlib.decompress(head + c.flush())


def keep_queue(data: bytes) -> Recover:
    q: asyncio.Queue[bytes] = asyncio.Queue()
    q.put_nowait(data)
    return lambda: q.get_nowait()


def keep_future(data: bytes) -> Recover:
    f = asyncio.get_running_loop().create_future()
    f.set_result(data)
    return lambda: f.result()


def keep_call_soon(data: bytes) -> Recover:
    out: list[bytes] = []
    asyncio.get_running_loop().call_soon(out.append, data)
    return lambda: out[0]


def keep_contextvar(data: bytes) -> Recover:
    ctx = contextvars.copy_context()
    ctx.run(VAR.set, data)
    return lambda: ctx[VAR]


def keep_hashlib(data: bytes) -> Recover:
    h = hashlib.sha256()
    h.update(data)
    return lambda: ("sha256", h.digest())


def keep_iter_unpack(data: bytes) -> Recover:
    it = struct.iter_unpack("<4s", data)
    return lambda: b"".join(t[0] for t in it)


def keep_unpack_from(data: bytes) -> Recover:
    f = functools.partial(struct.unpack_from, f"<{len(data)}s", data)
    return lambda: f()[0]


def keep_closure(data: bytes) -> Recover:
    return lambda: data


def keep_exception_args(data: bytes) -> Recover:
    e = ValueError(data)
    return lambda: e.args[0]


def keep_traceback_frame(data: bytes) -> Recover:
    try:
        raise RuntimeError
    except RuntimeError as exc:
        e = exc
    tb = e.__traceback__
    assert tb is not None
    return lambda: tb.tb_frame.f_locals["data"]


def keep_generator(data: bytes) -> Recover:
    g = _generator()
    next(g)
    g.send(data)
    return lambda: next(g)


def keep_regex_match(data: bytes) -> Recover:
    m = re.match(rb"(?s).*", data)
    assert m is not None
    return lambda: m.string


def keep_iterator(data: bytes) -> Recover:
    it = iter(data)
    return lambda: bytes(it)


def keep_ctypes(data: bytes) -> Recover:
    p = ctypes.c_char_p(data)
    n = len(data)
    return lambda: ctypes.string_at(ctypes.cast(p, ctypes.c_void_p).value, n)


KEEPERS: list[Callable[[bytes], Recover]] = [
    f for name, f in sorted(globals().items()) if name.startswith("keep_")
]


class Keeper(asyncio.Protocol):
    """Chunk i: dropped if i is even, else kept by plan[i // 2] (a keeper, or None: write
    it to the stalled transport)."""

    def __init__(self, plan: list[Callable[[bytes], Recover] | None], stalled: Any) -> None:
        self.plan = plan
        self.stalled = stalled
        self.i = 0
        self.sizes: list[int] = []
        self.kept: list[tuple[int, Recover]] = []
        self.hashes = 0
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        i = self.i
        self.i += 1
        self.sizes.append(len(data))
        if i % 2 == 0:
            self.hashes ^= hash(data)  # caches the hash in the object
        else:
            keep = self.plan[i // 2]
            if keep is None:
                self.stalled.write(data)
            else:
                self.kept.append((i, keep(data)))
        self.transport.write(b"a")


def test_kept_bytes_stay_intact(run: Any, seed: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rng = random.Random(seed)
        plan: list[Callable[[bytes], Recover] | None] = []
        sizes = []
        for _ in range(ROUNDS):
            for keeper in [*KEEPERS, None]:
                for size in SIZES:
                    plan.append(keeper)
                    sizes += [size, size]
        chunks = [rng.randbytes(n) for n in sizes]

        # A connection whose peer does not read: its write buffer holds what we write.
        stalled_client, stalled_peer = await connected_pair()
        stalled, _ = await loop.create_connection(asyncio.Protocol, sock=stalled_client)
        stalled.set_write_buffer_limits(high=1 << 30)
        blob = rng.randbytes(8 << 20)
        stalled.write(blob)
        assert stalled.get_write_buffer_size() > 0

        client, peer = await connected_pair()
        with peer, stalled_peer:
            transport, proto = await loop.create_connection(
                lambda: Keeper(plan, stalled), sock=client
            )
            for chunk in chunks:
                await loop.sock_sendall(peer, chunk)
                assert await loop.sock_recv(peer, 1) == b"a"
            assert proto.sizes == sizes, "a read was not exactly one chunk"
            await asyncio.sleep(0)  # the call_soon keepers' callbacks run

            bad = []
            for i, recover in proto.kept:
                got = recover()
                sent = chunks[i]
                want: Any = sent
                if got[0] == "slice":
                    want = ("slice", sent[100:-100])
                elif got[0] == "sha256":
                    want = ("sha256", hashlib.sha256(sent).digest())
                if got != want:
                    bad.append((i, plan[i // 2]))
            assert not bad, f"kept bytes changed after later reads: {bad}"

            expected = blob + b"".join(
                chunks[i] for i in range(1, len(chunks), 2) if plan[i // 2] is None
            )
            got = bytearray()
            while len(got) < len(expected):
                part = await loop.sock_recv(stalled_peer, 1 << 20)
                assert part, "EOF"
                got += part
            assert got == expected, "bytes waiting in a write buffer changed"
            transport.close()
            stalled.close()

    run(main)
