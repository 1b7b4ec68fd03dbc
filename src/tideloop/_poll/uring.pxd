cimport cython

from .._core._clock cimport tideloop_monotonic
from ._libc cimport (
    PyErr_CheckSignals, tideloop_bytes_at, tideloop_cqe_flags, tideloop_cqe_res,
    tideloop_cqe_user_data, tideloop_load_acquire_u32, tideloop_pbuf_put,
    tideloop_store_release_u16, tideloop_store_release_u32, tideloop_uring_enter,
    tideloop_uring_prep, tideloop_uring_prep_extra,
)
from .epoll cimport EpollPoller

cdef object _ceil
cdef object _monotonic_ns

cdef long long _now_ns() except? -1
cdef bint _NATIVE
cdef int _OP_POLL_ADD
cdef unsigned int _POLLIN
cdef int _SQE_SIZE
cdef int _CQE_SIZE
cdef unsigned long long _EPOLL_TAG
cdef int _ENTER_GETEVENTS
cdef long long _NS_PER_MS


@cython.final
cdef class Ring:
    cdef int _fd
    cdef object _maps
    cdef object _pins
    cdef object _ct
    cdef size_t _sq_head_addr
    cdef size_t _sq_tail_addr
    cdef size_t _sqes
    cdef unsigned int _sq_tail
    cdef unsigned int _sq_mask
    cdef unsigned int _sq_entries
    cdef unsigned int _pending
    cdef size_t _cq_head_addr
    cdef size_t _cq_tail_addr
    cdef size_t _cqes
    cdef unsigned int _cq_head
    cdef unsigned int _cq_mask
    cdef readonly unsigned int features

    cdef unsigned int _load(self, size_t addr) except? 0
    cdef int _store(self, size_t addr, unsigned int value) except -1
    @cython.locals(sqe=size_t)
    cpdef int prep(self, int opcode, int fd, unsigned long long off, unsigned long long addr,
                   unsigned int length, unsigned int op_flags, unsigned long long user_data,
                   int sqe_flags=*, int ioprio=*, int buf_group=*) except -1
    @cython.locals(r=int, flags=cython.uint, fd=int)
    cpdef int enter(self, unsigned int min_complete, long long timeout_ns) except? -1
    @cython.locals(result=list, head=cython.uint, tail=cython.uint, cqe=size_t)
    cpdef list reap(self)


@cython.final
cdef class BufferRing:
    cdef Ring _ring
    cdef object _ct
    cdef object _maps
    cdef object _pins
    cdef size_t _entries
    cdef size_t _data
    cdef unsigned int _tail
    cdef unsigned int _mask
    cdef readonly Py_ssize_t size
    cdef readonly object group  # a Python int: shifted by 32 into the register argument

    @cython.locals(entry=size_t, addr=size_t)
    cdef int _put(self, unsigned int bid) except -1
    cdef int _publish(self) except -1
    @cython.locals(addr=size_t)
    cpdef bytes take(self, unsigned int bid, Py_ssize_t length)
    cpdef give(self, unsigned int bid)


cdef class UringPoller(EpollPoller):
    cdef Ring _ring
    cdef bint _armed

    cpdef list poll(self, object timeout)
    cdef int _wait(self, int timeout_ms) except -1
    @cython.locals(ring=Ring, r=int, ready=bint, deadline=cython.longlong)
    cdef bint _wait_ring(self, long long timeout_ns) except -1
