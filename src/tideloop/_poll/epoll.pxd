cimport cython

from .._core._clock cimport tideloop_monotonic
from ._libc cimport (
    PyErr_CheckSignals, c_errno, epoll_event, free, tideloop_alloc_events, tideloop_epoll_wait,
)

cdef int _EPOLLIN
cdef int _EPOLLOUT
cdef int _NOT_IN
cdef int _NOT_OUT
cdef object _ceil
cdef bint _NATIVE
cdef int _MAX_EVENTS


cdef class EpollPoller:
    cdef object _epoll
    cdef object _epoll_poll
    cdef int _epfd
    cdef epoll_event* _events

    @cython.locals(fd=int, ev=int, mask=int, result=list)
    cpdef list poll(self, object timeout)

    @cython.locals(n=int, i=int, result=list)
    cdef list _poll_native(self, int timeout_ms)
    @cython.locals(n=int, err=int, deadline=double)
    cdef int _wait(self, int timeout_ms) except -1
    cdef inline int _event_fd(self, int i) noexcept
    @cython.locals(ev=int, mask=int)
    cdef inline int _event_mask(self, int i) noexcept
