# C types for loop.py (Cython pure-Python mode). The attribute names are asyncio's.
cimport cython

from ._clock cimport TIDELOOP_HAVE_NATIVE_CLOCK, tideloop_monotonic
from .._poll.epoll cimport EpollPoller
from .handles cimport Handle, TimerHandle, new_handle, new_threadsafe_handle, new_timer_handle
from .metrics cimport LoopStats
from .timers cimport heap_pop, heap_push
from .watcher cimport IOWatcher
from .waker cimport Waker

# `del ready[:n]` as one C call: Cython's generic slice deletion builds a slice object and goes
# through the mapping protocol (~570 instructions a pass on a short list, ~150 this way).
# Atomic under the GIL like the statement it replaces (see loop.py's ready-queue invariant).
cdef extern from *:
    """
    static CYTHON_INLINE int tideloop_del_head(PyObject *list, Py_ssize_t n) {
        return PyList_SetSlice(list, 0, n, NULL);
    }
    """
    int tideloop_del_head(list lst, Py_ssize_t n) except -1

cdef int _MIN_SCHEDULED_TIMER_HANDLES
cdef double _MIN_CANCELLED_TIMER_HANDLES_FRACTION
cdef double MAXIMUM_SELECT_TIMEOUT
cdef int READ
cdef int WRITE
cdef object _heapify
cdef object _as_double
cdef object _ceil
cdef object _monotonic
cdef object _get_ident
cdef object _iscoroutine
cdef object _iscoroutinefunction
cdef bint _PY313
cdef bint _PY3133
cdef bint _PY314
cdef bint _NATIVE
cdef bint _NATIVE_CLOCK

# inline: read after every callback (Cython warns that declarations are not inlined; it is)
cdef inline double _now() noexcept
cdef double _py_now() noexcept


cdef class FdEntry:
    cdef public object reader
    cdef public object writer
    cdef public IOWatcher rwatch
    cdef public IOWatcher wwatch
    cdef public int events


cdef class Loop:
    cdef public bint _closed
    cdef public bint _stopping
    cdef public list _ready
    cdef public list _scheduled
    cdef public Py_ssize_t _timer_cancelled_count
    cdef public object _thread_id
    cdef public double _clock_resolution
    cdef public object _task_factory
    cdef public object _current_handle
    cdef public object _coroutine_origin_tracking_enabled
    cdef public object _coroutine_origin_tracking_saved_depth
    cdef public double slow_callback_duration
    cdef public bint _debug
    cdef public dict _fds
    cdef public object _poller
    cdef bint _lazy_unregister
    cdef EpollPoller _epoll
    cdef public Waker _waker
    cdef public int _waker_fd
    cdef public LoopStats _stats
    cdef public IOWatcher _flush_head
    cdef public IOWatcher _flush_tail

    cpdef _check_closed(self)

    @cython.locals(
        scheduled=list, new_scheduled=list, sched_count=Py_ssize_t, timer=TimerHandle,
        handle=Handle, timeout=double, end_time=double, ntodo=Py_ssize_t, i=Py_ssize_t,
        ready=list, epoll=EpollPoller, timeout_ms=int, nevents=int, k=int, fd=int, mask=int,
        timers=list, t=Py_ssize_t, ntimers=Py_ssize_t, stats=LoopStats, may_block=bint,
        now=double, slow=double, timer_lag=double, t0=double, t1=double, ran=Py_ssize_t,
    )
    cpdef _run_once(self)

    cdef _run_handle_debug(self, Handle handle)
    @cython.locals(watcher=IOWatcher)
    cdef _flush_writes(self)

    @cython.locals(entry=FdEntry, fds=dict, watcher=IOWatcher)
    cdef _process_event(self, int fd, int mask)
    @cython.locals(stats=LoopStats)
    cdef _note_slow(self, object item, double duration)
    @cython.locals(stats=LoopStats, t0=double, t1=double)
    cdef _run_io_handle(self, Handle handle)

    @cython.locals(stats=LoopStats, t0=double, t1=double)
    cdef _dispatch(self, IOWatcher watcher, bint readable)

    @cython.locals(timer=TimerHandle)
    cdef TimerHandle _call_at(self, double when, object callback, tuple args, object context,
                              str method)
    cpdef _timer_handle_cancelled(self, TimerHandle handle)
    cpdef _add_callback(self, Handle handle)

    @cython.locals(entry=FdEntry)
    cpdef _add_reader(self, int fd, object handle)
    @cython.locals(entry=FdEntry)
    cpdef _add_writer(self, int fd, object handle)
    @cython.locals(entry=FdEntry)
    cpdef bint _remove_reader(self, int fd)
    @cython.locals(entry=FdEntry)
    cpdef bint _remove_writer(self, int fd)
    cdef _drop_events(self, int fd, FdEntry entry, int events)
