cimport cython

from ._sockio cimport (
    tideloop_recv_bytes_hint,
    tideloop_recycle_bytes,
    tideloop_recv_into,
    tideloop_send,
    tideloop_sendv,
)
from tideloop._core.loop cimport Loop
from tideloop._core.watcher cimport IOWatcher

from .base cimport TransportCore

cdef object _BufferedProtocol
cdef bint _HAS_SENDMSG
cdef Py_ssize_t _IOV_MAX
cdef Py_ssize_t _MAX_SIZE
cdef int _SHUT_WR
cdef bint _NATIVE
cdef int CLOSING
cdef int LOST
cdef bint STREAM_SHARED_CONTEXT
cdef object _copy_context
cdef Py_ssize_t _DEFER_MAX


cdef class StreamCore(TransportCore):
    cdef public object _buffer
    cdef public bint _eof
    cdef public object _empty_waiter
    cdef public bint _buffered
    cdef object _data_received
    cdef object _get_buffer
    cdef object _buffer_updated
    cdef object _sockname
    cdef object _peername
    cdef Py_ssize_t _recv_hint
    cdef bint _deferred
    cdef object _pending

    cpdef _read_ready(self)
    @cython.locals(nread=Py_ssize_t)
    cdef _read_ready__data_received(self)
    @cython.locals(nbytes=Py_ssize_t)
    cpdef _read_ready__get_buffer(self)
    cdef _read_ready__on_eof(self)
    @cython.locals(n=Py_ssize_t)
    cpdef write(self, object data)
    @cython.locals(n=Py_ssize_t)
    cdef Py_ssize_t _send(self, object data) except -2
    @cython.locals(loop=Loop, tail=IOWatcher)
    cdef _defer(self)
    @cython.locals(pending=object)
    cdef _defer_more(self, object data)
    cpdef _on_flush(self)
    @cython.locals(n=Py_ssize_t, size=Py_ssize_t, several=bint)
    cpdef _flush_deferred(self, bint at_pass_end=*)
    @cython.locals(n=Py_ssize_t)
    cdef Py_ssize_t _sendv(self, list chunks) except -2
    @cython.locals(n=Py_ssize_t)
    cdef Py_ssize_t _sendv_py(self, list chunks) except -2
    cdef _append(self, object data, Py_ssize_t sent)
    @cython.locals(size=Py_ssize_t, chunks=list)
    cpdef writelines(self, object list_of_data)
    @cython.locals(n=Py_ssize_t, size=Py_ssize_t, buffer=object)
    cdef bint _flush(self) except -1
    cpdef _write_ready(self)
    cpdef _clear_buffer(self)
    cpdef write_eof(self)
    cpdef close(self)
    cpdef _call_connection_lost(self, object exc)
