cimport cython


# A C shim for the compiled build (see ``_NATIVE`` in tls_core.py; pure mode slices a memoryview):
# the first n bytes of a bytearray as a new bytes object, with no slice or view in between.
cdef extern from *:
    """
    static CYTHON_UNUSED PyObject *tideloop_bytearray_head(PyObject *buf, Py_ssize_t n) {
        return PyBytes_FromStringAndSize(PyByteArray_AS_STRING(buf), n);
    }
    """
    object tideloop_bytearray_head(bytearray buf, Py_ssize_t n)

cdef bint _NATIVE
cdef bint _PY314

cdef object _SSLAgainErrors
cdef object _SSLError
cdef object _clear_openssl_errors
cdef object _CertificateError
cdef object _MemoryBIO
cdef object _BufferedProtocol
cdef Py_ssize_t _LOG_THRESHOLD_FOR_CONNLOST_WRITES
cdef Py_ssize_t _MAX_SIZE

cdef int TLS_UNWRAPPED
cdef int TLS_DO_HANDSHAKE
cdef int TLS_WRAPPED
cdef int TLS_FLUSHING
cdef int TLS_SHUTDOWN

cdef int APP_INIT
cdef int APP_CON_MADE
cdef int APP_EOF
cdef int APP_CON_LOST


cdef class TLSCore:
    cdef public object _loop
    cdef public object _ssl_protocol
    cdef public object _app_protocol
    cdef public bint _app_protocol_is_buffer
    cdef object _app_protocol_get_buffer
    cdef object _app_protocol_buffer_updated
    cdef object _ssl_buffer
    cdef object _ssl_buffer_view
    cdef public bint _server_side
    cdef public object _server_hostname
    cdef public object _sslcontext
    cdef public dict _extra
    cdef public object _write_backlog
    cdef public Py_ssize_t _write_buffer_size
    cdef public object _waiter
    cdef public object _app_transport
    cdef public object _transport
    cdef object _transport_write
    cdef public object _ssl_handshake_timeout
    cdef public object _ssl_shutdown_timeout
    cdef public object _incoming
    cdef public object _outgoing
    cdef public int _state
    cdef public Py_ssize_t _conn_lost
    cdef public int _app_state
    cdef public object _sslobj
    cdef object _sslobj_read
    cdef object _sslobj_write
    cdef object _sslobj_pending
    cdef object _incoming_write
    cdef object _outgoing_read
    cdef public bint _ssl_writing_paused
    cdef public bint _app_reading_paused
    cdef public bint _ssl_reading_paused
    cdef public double _incoming_high_water
    cdef public double _incoming_low_water
    cdef public tuple _read_limits
    cdef public bint _eof_received
    cdef public bint _protocol_paused
    cdef public double _outgoing_high_water
    cdef public double _outgoing_low_water
    cdef public tuple _write_limits
    cdef public object _handshake_start_time
    cdef public object _handshake_timeout_handle
    cdef public object _shutdown_timeout_handle

    cpdef _set_app_protocol(self, object app_protocol)
    cdef _wakeup_waiter(self, object exc=*)
    cpdef get_buffer(self, Py_ssize_t n)
    cpdef buffer_updated(self, Py_ssize_t nbytes)
    cpdef _set_state(self, int new_state)
    cdef _start_handshake(self)
    cdef _do_handshake(self)
    cdef _on_handshake_complete(self, object handshake_exc)
    cpdef _start_shutdown(self)
    cdef _do_flush(self)
    cdef _do_shutdown(self)
    cdef _on_shutdown_complete(self, object shutdown_exc)
    cpdef _abort(self, object exc)
    @cython.locals(count=Py_ssize_t, data_len=Py_ssize_t)
    cpdef write(self, object data)
    cpdef _write_appdata(self, object list_of_data)
    @cython.locals(count=Py_ssize_t, data_len=Py_ssize_t)
    cdef _do_write(self)
    cdef _process_outgoing(self)
    cpdef _do_read(self)
    @cython.locals(offset=Py_ssize_t, count=Py_ssize_t, wants=Py_ssize_t)
    cdef _do_read__buffered(self)
    @cython.locals(offset=Py_ssize_t, count=Py_ssize_t, size=Py_ssize_t)
    cdef _do_read__copied(self)
    cdef _call_eof_received(self)
    @cython.locals(size=Py_ssize_t)
    cpdef _control_app_writing(self)
    cdef _call_app_flow(self, str name)
    cpdef Py_ssize_t _get_write_buffer_size(self) except -1
    @cython.locals(size=Py_ssize_t)
    cpdef _control_ssl_reading(self)
    cpdef Py_ssize_t _get_read_buffer_size(self) except -1
    cpdef _fatal_error(self, object exc, str message=*)
