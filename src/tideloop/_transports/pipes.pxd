cimport cython

from .base cimport TransportCore

cdef int PIPE_OPEN
cdef int PIPE_CLOSING
cdef int PIPE_LOST
cdef int PIPE_CLOSED
cdef int _NEXT_OPEN
cdef int _NEXT_CLOSING
cdef int _NEXT_LOST
cdef tuple _STATE_NAMES
cdef Py_ssize_t _MAX_SIZE
cdef int _EIO
cdef Py_ssize_t _LOG_THRESHOLD
cdef bint _AIX
cdef object _os_read
cdef object _os_write
cdef object _set_result_unless_cancelled

cdef int _next_states(int state)
cdef _check_transition(int old, int new)
cdef str _repr(TransportCore core, str name, bint polling, Py_ssize_t bufsize)


cdef class ReadPipeCore(TransportCore):
    cdef public int _state

    cdef _set_state(self, int state)
    cpdef _on_readable(self)
    cpdef _read_ready(self)
    cpdef _on_writable(self)
    cpdef close(self)
    cdef _close(self, object exc)
    cpdef _force_close(self, object exc)
    cpdef _call_connection_lost(self, object exc)


cdef class WritePipeCore(TransportCore):
    cdef public int _state
    cdef public bytearray _buffer
    cdef public bint _watch_peer

    cdef _set_state(self, int state)
    cpdef _start(self, object waiter)
    cpdef _start_watching_peer(self)
    cpdef _on_readable(self)
    cpdef _read_ready(self)
    cpdef write(self, object data)
    cpdef writelines(self, object list_of_data)
    cpdef _on_writable(self)
    @cython.locals(buffer=bytearray, n=Py_ssize_t)
    cpdef _write_ready(self)
    cpdef write_eof(self)
    cpdef close(self)
    cdef _close(self, object exc)
    cpdef _force_close(self, object exc)
    cpdef _clear_buffer(self)
    cpdef _call_connection_lost(self, object exc)
