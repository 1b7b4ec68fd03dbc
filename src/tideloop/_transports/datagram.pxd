cimport cython

from ._sockio cimport (
    tideloop_addr_tuple,
    tideloop_last_addr_is,
    tideloop_last_addr_raw,
    tideloop_recvfrom_data,
    tideloop_rx,
    tideloop_send,
    tideloop_sendto_raw,
)
from .base cimport TransportCore

cdef Py_ssize_t _MAX_SIZE
cdef Py_ssize_t _MAX_SIZE_INET
cdef tuple _INET_FAMILIES
cdef Py_ssize_t _HEADER_SIZE
cdef bint _SEND_EMPTY
cdef int _DATAGRAMS_PER_PASS
cdef bint _NATIVE
cdef int CLOSING
cdef int LOST


cdef class DatagramCore(TransportCore):
    cdef public object _buffer
    cdef public object _address
    cdef public bint _connected
    cdef public Py_ssize_t _max_size
    cdef bint _native_addrs
    cdef object _raddr
    cdef object _raddr_raw
    cdef object _datagram_received
    cdef object _error_received

    @cython.locals(rx='tideloop_rx *')
    cpdef _read_ready(self)
    @cython.locals(chunk=bytes)
    cpdef sendto(self, object data, object addr=*)
    @cython.locals(buffer=object, item=tuple, data=bytes)
    cpdef _write_ready(self)
    cpdef _clear_buffer(self)
    cpdef _call_connection_lost(self, object exc)
