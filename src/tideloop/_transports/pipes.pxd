cimport cython

from .base cimport TransportCore

cdef int OPEN
cdef int CLOSING
cdef int LOST
cdef Py_ssize_t _MAX_SIZE
cdef int _EIO
cdef Py_ssize_t _LOG_THRESHOLD
cdef bint _AIX
cdef object _os_read
cdef object _os_write
cdef object _set_result_unless_cancelled

cdef str _repr(TransportCore core, str name, bint polling, Py_ssize_t bufsize)


cdef class ReadPipeCore(TransportCore):
    cpdef _read_ready(self)
    cpdef close(self)
    cdef _close(self, object exc)
    cpdef _force_close(self, object exc)


cdef class WritePipeCore(TransportCore):
    cdef public bytearray _buffer
    cdef public bint _watch_peer

    cpdef _start(self, object waiter)
    cpdef _start_watching_peer(self)
    cpdef _read_ready(self)
    cpdef write(self, object data)
    cpdef writelines(self, object list_of_data)
    @cython.locals(buffer=bytearray, n=Py_ssize_t)
    cpdef _write_ready(self)
    cpdef write_eof(self)
    cpdef close(self)
    cdef _close(self, object exc)
    cpdef _force_close(self, object exc)
    cpdef _clear_buffer(self)
