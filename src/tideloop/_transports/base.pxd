from tideloop._core.loop cimport Loop
from tideloop._core.watcher cimport IOWatcher

from ._sockio cimport (
    tideloop_context_enter,
    tideloop_context_exit,
    tideloop_rx,
    tideloop_rx_free,
    tideloop_rx_new,
)

cdef object _copy_context
cdef bint _NATIVE
cdef object _set_result_unless_cancelled
cdef Py_ssize_t _LOG_THRESHOLD_FOR_CONNLOST_WRITES
# OPEN, CLOSING, LOST, CLOSED stay Python ints here, so that other modules can import them
# (each declares its own C int copy); base only compares them on the closing paths.
cdef double _WATER_CAP
cdef tuple _DEFAULT_WATER_MARKS
cdef int _NEXT_OPEN
cdef int _NEXT_CLOSING
cdef int _NEXT_LOST
cdef tuple _STATE_NAMES

cdef int _next_states(int state)
cdef _check_transition(object core, int old, int new)


cdef class RecvState:
    cdef tideloop_rx *rx


cdef class TransportCore(IOWatcher):
    cdef public Loop _loop
    cdef RecvState _recv_state
    cdef public object _facade
    cdef public object _protocol
    cdef public object _sock
    cdef public int _sock_fd
    cdef public dict _extra
    cdef public object _context
    cdef public object _write_context
    cdef public bint _shared_context
    cdef public object _on_lost
    cdef public int _state
    cdef public bint _closing
    cdef public Py_ssize_t _conn_lost
    cdef public bint _protocol_connected
    cdef public bint _protocol_paused
    cdef public double _high_water
    cdef public double _low_water
    cdef public tuple _water_marks
    cdef public Py_ssize_t _buffer_size
    cdef public bint _paused
    cdef public bint _reading
    cdef public bint _is_connection

    cdef _set_state(self, int state)
    cpdef _on_readable(self)
    cpdef _on_writable(self)
    cpdef _read_ready(self)
    cpdef _write_ready(self)
    cdef _add_writer(self)
    cpdef _maybe_pause_protocol(self)
    cpdef _maybe_resume_protocol(self)
    cpdef _write_after_conn_lost(self)
    cpdef _clear_buffer(self)
    cpdef _start(self, object waiter)
    cpdef _start_reading(self)
    cpdef bint is_reading(self)
    cpdef pause_reading(self)
    cpdef resume_reading(self)
    cdef _stop_reading(self)
    cpdef close(self)
    cpdef _force_close(self, object exc)
    cpdef _call_connection_lost(self, object exc)
    cpdef _close_fd(self)
