"""The io_uring backend: epoll's readiness set, waited on through an io_uring.

What it is today: ``UringPoller`` keeps every fd in an epoll set exactly as ``EpollPoller``
does (it is one: same registration, same level-triggered events, same lazy unregistering),
and waits for that set through a ring: a one-shot ``IORING_OP_POLL_ADD`` on the epoll fd,
re-armed after each completion, submitted and waited for in one ``io_uring_enter`` whose
timeout is the loop's. When it completes, ``epoll_wait(0)`` collects the events. A poll with
timeout 0 skips the ring and asks epoll directly. The ring is the place where completion-mode
I/O (sends queued during a pass and submitted with the wait, multishot receives into a
provided-buffer ring) joins the same wait; see docs/design.md, "The io_uring backend".

Why readiness stays in epoll rather than one ``POLL_ADD`` per fd: an io_uring request holds a
reference to its file, so a socket closed by its owner while a poll on it is armed stays open
(no FIN to the peer) until the request completes or is cancelled. asyncio programs close fds
that still have a reader (epoll forgets them by itself; ``lazy_unregister`` relies on it), so
per-fd polls would need every close to pass through the loop first. (tests/unit/test_uring.py
shows the pinning on this kernel.)

The ring: raw ``io_uring_setup``/``io_uring_enter`` syscalls and the rings mmapped by the
``mmap`` module (no liburing: no build or runtime dependency, and the few operations used fit
in a page; see docs/design.md). The compiled build touches the shared memory through the C
helpers of ``_libc.pxd`` (acquire loads, release stores); the pure build through ``ctypes``,
which on x86-64 and under the GIL orders the same. Set-up asks for ``COOP_TASKRUN`` (no
interrupt to run completion work; retried without it on kernels before 5.19) and needs
``IORING_FEAT_EXT_ARG`` (5.11: a timeout on the wait), else it is refused like a kernel
without io_uring. Not ``SINGLE_ISSUER``/``DEFER_TASKRUN``: an asyncio loop may be created in
one thread and run in another, which those flags refuse.

Refusal: ``io_uring_setup`` fails where seccomp filters it (most container runtimes' default
profiles), where ``kernel.io_uring_disabled`` says so, or on kernels without it; the
constructor then raises OSError and ``make_poller`` falls back to epoll with one log line.
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
import sys
from math import ceil as _ceil
from time import monotonic_ns as _monotonic_ns
from typing import Any

from .epoll import EpollPoller

# True in the compiled build: the C helpers of _libc.pxd are then reachable.
_NATIVE = not __file__.endswith(".py")

_SYS_SETUP = 425  # the generic syscall table: the same number on every Linux architecture
_SYS_ENTER = 426
_SYS_REGISTER = 427
_REGISTER_PBUF_RING = 22
_UNREGISTER_PBUF_RING = 23
_SETUP_CLAMP = 1 << 4
_SETUP_COOP_TASKRUN = 1 << 8
_FEAT_SINGLE_MMAP = 1 << 0
_FEAT_NODROP = 1 << 1
_FEAT_EXT_ARG = 1 << 8
_NEEDED_FEATURES = _FEAT_SINGLE_MMAP | _FEAT_NODROP | _FEAT_EXT_ARG
_ENTER_GETEVENTS = 1 << 0
_ENTER_EXT_ARG = 1 << 3
_OFF_SQES = 0x10000000
_OP_POLL_ADD = 6
_POLLIN = 0x001
_SQE_SIZE = 64
_CQE_SIZE = 16
_ENTRIES = 64
# A C long long in the compiled build: ms -> ns in 64 bits (an int product overflows at 2.1 s).
_NS_PER_MS = 1_000_000
_MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)

#: user_data of the poll on the epoll fd; completion-mode requests use other values.
_EPOLL_TAG = 1
#: enter()'s results that are not errors: the wait timed out (ETIME), a signal came (EINTR),
#: completions must be reaped before more fit (EBUSY, EAGAIN).
_WAIT_ENDINGS = (-errno.ETIME, -errno.EINTR, -errno.EBUSY, -errno.EAGAIN)

# opcode flags ioprio fd off addr len op_flags user_data buf_group (personality ...: zero)
_SQE = struct.Struct("<BBHiQQIIQH22x")
_CQE = struct.Struct("<QiI")  # user_data res flags


def _ctypes() -> Any:
    """ctypes, imported on first use: only a loop on this backend needs it (set-up in both
    builds, every ring access in the pure one)."""
    import ctypes

    return ctypes


def _params_type() -> Any:
    """struct io_uring_params as a ctypes Structure (its two offset structs share a shape)."""
    ct = _ctypes()

    def make(name: str, u32_fields: str, tail: list) -> Any:
        fields = [(field, ct.c_uint32) for field in u32_fields.split()] + tail
        return type(name, (ct.Structure,), {"_fields_": fields})

    user_addr = [("user_addr", ct.c_uint64)]
    sq_off = make("SqOffsets", "head tail ring_mask ring_entries flags dropped array resv1",
                    user_addr)  # fmt: skip
    cq_off = make("CqOffsets", "head tail ring_mask ring_entries overflow cqes flags resv1",
                    user_addr)  # fmt: skip
    tail = [("resv", ct.c_uint32 * 3), ("sq_off", sq_off), ("cq_off", cq_off)]
    return make(
        "Params", "sq_entries cq_entries flags sq_thread_cpu sq_thread_idle features wq_fd", tail
    )


def _pin(ct: Any, mm: mmap.mmap, maps: list, pins: list) -> int:
    """Keep ``mm`` (in ``maps``) with a ctypes view pinning it (in ``pins``); its address."""
    maps.append(mm)
    pin = ct.c_char.from_buffer(mm)
    pins.append(pin)
    return int(ct.addressof(pin))


def _unmap(maps: list, pins: list) -> None:
    """Close what ``_pin`` kept: the views first (a mapping with exports cannot close)."""
    pins.clear()
    for mm in maps:
        mm.close()
    maps.clear()


class Ring:
    """One io_uring: queue SQEs with ``prep``, submit and wait with ``enter``, take the CQEs
    with ``reap``. The loop's thread only.

    Invariant: ``_sq_tail`` is our next SQE slot (published to the kernel by ``enter``);
    ``_pending`` = SQEs queued and not yet consumed by the kernel (<= ``_sq_entries``);
    ``_cq_head`` is the next CQE to read. The SQ index array is the identity, written once.
    """

    __slots__ = (
        "_fd",
        "_maps",
        "_pins",
        "_ct",
        "_sq_head_addr",
        "_sq_tail_addr",
        "_sqes",
        "_sq_tail",
        "_sq_mask",
        "_sq_entries",
        "_pending",
        "_cq_head_addr",
        "_cq_tail_addr",
        "_cqes",
        "_cq_head",
        "_cq_mask",
        "features",
    )

    def __init__(self, entries: int) -> None:
        """Set up a ring of ``entries`` SQEs; OSError if the kernel refuses or lacks a
        feature this backend needs (see the module docstring)."""
        if not sys.platform.startswith("linux"):
            raise OSError(errno.ENOSYS, "io_uring is Linux only")
        ct = _ctypes()
        self._ct = ct
        self._fd = -1
        self._maps: list[Any] = []
        self._pins: list[Any] = []
        params_type = _params_type()
        params: Any = params_type()
        params.flags = _SETUP_CLAMP | _SETUP_COOP_TASKRUN
        fd = _syscall(_SYS_SETUP, entries, ct.addressof(params))
        if fd < 0 and ct.get_errno() == errno.EINVAL:  # before 5.19: no COOP_TASKRUN
            params = params_type()
            params.flags = _SETUP_CLAMP
            fd = _syscall(_SYS_SETUP, entries, ct.addressof(params))
        if fd < 0:
            err = ct.get_errno()
            raise OSError(err, f"io_uring_setup: {os.strerror(err)}")
        self._fd = fd
        self.features = params.features
        try:
            if params.features & _NEEDED_FEATURES != _NEEDED_FEATURES:
                raise OSError(
                    errno.ENOSYS,
                    "io_uring_setup: this kernel's io_uring lacks "
                    "EXT_ARG, NODROP or SINGLE_MMAP (Linux 5.11 has them)",
                )
            sq, cq = params.sq_off, params.cq_off
            size = max(sq.array + params.sq_entries * 4, cq.cqes + params.cq_entries * _CQE_SIZE)
            rings = self._map(size, 0)
            self._sqes = self._map(params.sq_entries * _SQE_SIZE, _OFF_SQES)
        except BaseException:
            self.close()
            raise
        self._sq_head_addr = rings + sq.head
        self._sq_tail_addr = rings + sq.tail
        self._sq_mask = self._load(rings + sq.ring_mask)
        self._sq_entries = params.sq_entries
        self._sq_tail = self._load(self._sq_tail_addr)
        self._pending = 0
        for i in range(params.sq_entries):
            ct.c_uint32.from_address(rings + sq.array + 4 * i).value = i
        self._cq_head_addr = rings + cq.head
        self._cq_tail_addr = rings + cq.tail
        self._cq_mask = self._load(rings + cq.ring_mask)
        self._cq_head = self._load(self._cq_head_addr)
        self._cqes = rings + cq.cqes

    def _map(self, size: int, offset: int) -> int:
        """mmap ``size`` bytes of the ring at ``offset``; return their address (kept mapped
        and pinned until close)."""
        mm = mmap.mmap(
            self._fd,
            size,
            mmap.MAP_SHARED | _MAP_POPULATE,
            mmap.PROT_READ | mmap.PROT_WRITE,
            offset=offset,
        )
        return _pin(self._ct, mm, self._maps, self._pins)

    def fileno(self) -> int:
        return self._fd

    def _load(self, addr: int) -> int:
        if _NATIVE:
            return tideloop_load_acquire_u32(addr)  # noqa: F821
        return self._ct.c_uint32.from_address(addr).value

    def _store(self, addr: int, value: int) -> int:
        if _NATIVE:
            tideloop_store_release_u32(addr, value)  # noqa: F821
        else:
            self._ct.c_uint32.from_address(addr).value = value & 0xFFFFFFFF
        return 0

    def prep(
        self,
        opcode: int,
        fd: int,
        off: int,
        addr: int,
        length: int,
        op_flags: int,
        user_data: int,
        sqe_flags: int = 0,
        ioprio: int = 0,
        buf_group: int = 0,
    ) -> int:
        """Queue one SQE (submitted by the next ``enter``; a full queue is submitted first).
        The kernel reads ``addr``'s memory when it runs the request: keep it alive and
        unchanged until the request's CQE."""
        if self._pending >= self._sq_entries:
            self.enter(0, 0)
            if self._pending >= self._sq_entries:
                raise OSError(errno.EBUSY, "io_uring submission queue full")
        sqe = self._sqes + (self._sq_tail & self._sq_mask) * _SQE_SIZE
        if _NATIVE:
            tideloop_uring_prep(sqe, opcode, fd, off, addr, length, op_flags, user_data)  # noqa: F821
            if sqe_flags or ioprio or buf_group:
                tideloop_uring_prep_extra(sqe, sqe_flags, ioprio, buf_group)  # noqa: F821
        else:
            self._ct.memmove(
                sqe,
                _SQE.pack(
                    opcode, sqe_flags, ioprio, fd, off, addr, length, op_flags, user_data, buf_group
                ),
                _SQE_SIZE,
            )
        self._sq_tail = (self._sq_tail + 1) & 0xFFFFFFFF
        self._pending += 1
        return 0

    def enter(self, min_complete: int, timeout_ns: int) -> int:
        """Submit the queued SQEs and wait until ``min_complete`` CQEs are ready or
        ``timeout_ns`` passed (-1: no limit). Return how many SQEs the kernel took, or one of
        ``_WAIT_ENDINGS`` (negative errno); raise OSError for anything else."""
        self._store(self._sq_tail_addr, self._sq_tail)
        flags = _ENTER_GETEVENTS if min_complete else 0
        if _NATIVE:
            fd = self._fd
            r = tideloop_uring_enter(fd, self._pending, min_complete, flags, timeout_ns)  # noqa: F821
        else:
            r = self._enter_ctypes(min_complete, flags, timeout_ns)
        # What the kernel consumed, whatever the result said (a timed-out wait that submitted
        # returns the count; a failed one may still have taken some).
        self._pending = (self._sq_tail - self._load(self._sq_head_addr)) & 0xFFFFFFFF
        if r < 0 and r not in _WAIT_ENDINGS:
            raise OSError(-r, f"io_uring_enter: {os.strerror(-r)}")
        return r

    def _enter_ctypes(self, min_complete: int, flags: int, timeout_ns: int) -> int:
        ct = self._ct
        ts = (ct.c_int64 * 2)(timeout_ns // 1_000_000_000, timeout_ns % 1_000_000_000)
        arg = (ct.c_uint64 * 3)(0, 0, ct.addressof(ts) if timeout_ns >= 0 else 0)
        r = _syscall(
            _SYS_ENTER,
            self._fd,
            self._pending,
            min_complete,
            flags | _ENTER_EXT_ARG,
            ct.addressof(arg),
            ct.sizeof(arg),
        )
        return -ct.get_errno() if r < 0 else r

    def reap(self) -> list:
        """Take every ready CQE: [(user_data, res, flags)], in completion order."""
        result = []
        head = self._cq_head
        tail = self._load(self._cq_tail_addr)
        while head != tail:
            cqe = self._cqes + (head & self._cq_mask) * _CQE_SIZE
            if _NATIVE:
                result.append(
                    (
                        tideloop_cqe_user_data(cqe),  # noqa: F821
                        tideloop_cqe_res(cqe),  # noqa: F821
                        tideloop_cqe_flags(cqe),  # noqa: F821
                    )
                )
            else:
                result.append(_CQE.unpack(self._ct.string_at(cqe, _CQE.size)))
            head = (head + 1) & 0xFFFFFFFF
        if head != self._cq_head:
            self._cq_head = head
            self._store(self._cq_head_addr, head)
        return result

    def register(self, opcode: int, arg: int, nr_args: int) -> None:
        """io_uring_register(2); OSError on failure."""
        if _syscall(_SYS_REGISTER, self._fd, opcode, arg, nr_args) < 0:
            err = self._ct.get_errno()
            raise OSError(err, f"io_uring_register: {os.strerror(err)}")

    def close(self) -> None:
        """Unmap and close; idempotent. Requests in flight are cancelled by the kernel."""
        _unmap(self._maps, self._pins)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


_libc_syscall: Any = None


def _syscall(number: int, *args: int) -> int:
    """libc's syscall(2) through ctypes: the result, -1 with ctypes' errno set on failure."""
    global _libc_syscall
    ct = _ctypes()
    if _libc_syscall is None:
        _libc_syscall = ct.CDLL(None, use_errno=True).syscall
        _libc_syscall.restype = ct.c_long
    return _libc_syscall(ct.c_long(number), *(ct.c_long(a) for a in args))


class BufferRing:
    """A provided-buffer ring (``IORING_REGISTER_PBUF_RING``, Linux 5.19): ``count`` buffers
    of ``size`` bytes that reads with ``IOSQE_BUFFER_SELECT`` in group ``group`` fill, the
    kernel picking one per completion and naming it in the CQE's flags (``bid = flags >> 16``).

    Invariant: a buffer is either the kernel's (in the ring, not yet used) or ours (named by
    a CQE, until ``give`` returns it); ``take`` copies a buffer's bytes out, so nothing
    outside sees memory the kernel may reuse. ``count`` is a power of two (<= 32768).
    """

    __slots__ = (
        "_ring",
        "_ct",
        "_maps",
        "_pins",
        "_entries",
        "_data",
        "_tail",
        "_mask",
        "size",
        "group",
    )

    def __init__(self, ring: Ring, group: int, count: int, size: int) -> None:
        if count < 1 or count > 32768 or count & (count - 1):
            raise ValueError(f"count must be a power of two up to 32768, not {count}")
        self._ring = ring
        self._ct = ct = _ctypes()
        self.group = group
        self.size = size
        self._mask = count - 1
        self._tail = 0
        self._maps: list[Any] = []
        self._pins: list[Any] = []
        self._entries = self._anonymous(count * 16)
        self._data = self._anonymous(count * size)
        reg = (ct.c_uint64 * 5)(self._entries, count | (group << 32), 0, 0, 0)
        try:
            ring.register(_REGISTER_PBUF_RING, ct.addressof(reg), 1)
        except BaseException:
            _unmap(self._maps, self._pins)
            raise
        for bid in range(count):
            self._put(bid)
        self._publish()

    def _anonymous(self, size: int) -> int:
        mm = mmap.mmap(-1, size, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        return _pin(self._ct, mm, self._maps, self._pins)

    def _put(self, bid: int) -> int:
        entry = self._entries + (self._tail & self._mask) * 16
        addr = self._data + bid * self.size
        if _NATIVE:
            tideloop_pbuf_put(entry, addr, self.size, bid)  # noqa: F821
        else:
            self._ct.memmove(entry, struct.pack("<QIH", addr, self.size, bid), 14)
        self._tail = (self._tail + 1) & 0xFFFF
        return 0

    def _publish(self) -> int:
        if _NATIVE:
            tideloop_store_release_u16(self._entries + 14, self._tail)  # noqa: F821
        else:
            self._ct.c_uint16.from_address(self._entries + 14).value = self._tail
        return 0

    def take(self, bid: int, length: int) -> bytes:
        """The first ``length`` bytes of buffer ``bid`` (a copy), then ``bid`` goes back to
        the kernel."""
        addr = self._data + bid * self.size
        if _NATIVE:
            data = tideloop_bytes_at(addr, length)  # noqa: F821
        else:
            data = self._ct.string_at(addr, length)
        self.give(bid)
        return data

    def give(self, bid: int) -> None:
        """Return buffer ``bid`` to the kernel."""
        self._put(bid)
        self._publish()

    def close(self) -> None:
        """Unregister and unmap; idempotent. No read may be in flight in this group."""
        if self._maps:
            reg = (self._ct.c_uint64 * 5)(0, self.group << 32, 0, 0, 0)
            try:
                self._ring.register(_UNREGISTER_PBUF_RING, self._ct.addressof(reg), 1)
            except OSError:
                pass  # the ring is closed (its close dropped the group) or never had it
            _unmap(self._maps, self._pins)


class UringPoller(EpollPoller):
    """epoll's readiness, waited on through an io_uring (see the module docstring); the
    contract of every backend. Not thread-safe: the loop's thread only.

    Invariant: ``_armed`` is True exactly while a POLL_ADD on the epoll fd is queued or in
    flight (at most one: its completion is the signal to collect epoll's events).
    """

    __slots__ = ("_ring", "_armed")

    #: Its key in tideloop._poll.POLLERS (TIDELOOP_POLLER=io_uring), shown by the loop's repr.
    name = "io_uring"

    #: Readiness is epoll's, which forgets a closed fd by itself (see EpollPoller).
    lazy_unregister = True

    def __init__(self) -> None:
        EpollPoller.__init__(self)
        self._armed = False
        try:
            self._ring = Ring(_ENTRIES)
        except BaseException:
            EpollPoller.close(self)
            raise

    def poll(self, timeout: float | None) -> list:
        """Wait up to ``timeout`` seconds (None: forever); return [(fd, READ|WRITE mask)]."""
        if self._epfd < 0:
            raise ValueError("I/O operation on closed epoll object")
        if timeout is not None and timeout <= 0.0:
            return EpollPoller.poll(self, 0)
        if self._wait_ring(-1 if timeout is None else _ceil(timeout * 1e9)):
            return EpollPoller.poll(self, 0)
        return []

    def _wait(self, timeout_ms: int) -> int:
        """The compiled loop's wait (see EpollPoller._wait): the events land in epoll's array."""
        if timeout_ms != 0 and not self._wait_ring(
            -1 if timeout_ms < 0 else timeout_ms * _NS_PER_MS
        ):
            return 0
        return EpollPoller._wait(self, 0)

    def _wait_ring(self, timeout_ns: int) -> bool:
        """Wait through the ring up to ``timeout_ns`` (-1: forever); True if epoll has events
        (its poll completed), False once the time is up.

        An interrupted wait runs the Python signal handlers (which may raise) and waits out
        the rest, as EpollPoller does (PEP 475). A wait that also submitted returns the count
        submitted whatever ended it, so "ended without our completion" is all we can tell.
        """
        ring = self._ring
        if not self._armed:
            ring.prep(_OP_POLL_ADD, self._epfd, 0, 0, 0, _POLLIN, _EPOLL_TAG)
            self._armed = True
        deadline = _now_ns() + timeout_ns if timeout_ns > 0 else 0
        while True:
            r = ring.enter(1, timeout_ns)
            ready = False
            for user_data, res, _flags in ring.reap():
                if user_data == _EPOLL_TAG:
                    self._armed = False
                    if res < 0:
                        raise OSError(-res, f"io_uring poll on epoll: {os.strerror(-res)}")
                    ready = True
            if _NATIVE:
                PyErr_CheckSignals()  # noqa: F821  (the pure build runs them at its next bytecode)
            if ready or r == -errno.ETIME or timeout_ns == 0:
                return ready
            if timeout_ns > 0:
                timeout_ns = deadline - _now_ns()
                if timeout_ns <= 0:
                    return False

    def close(self) -> None:
        EpollPoller.close(self)
        self._ring.close()


def _now_ns() -> int:
    """CLOCK_MONOTONIC in ns (the compiled build reads it without a Python call)."""
    if _NATIVE:
        return int(tideloop_monotonic() * 1e9)  # noqa: F821
    return _monotonic_ns()


def uring_refusal() -> OSError | None:
    """Why this process cannot use the io_uring backend, or None if it can (a ring is set
    up and closed to find out)."""
    try:
        Ring(2).close()
    except OSError as exc:
        return exc
    return None
