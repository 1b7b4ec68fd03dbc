# C shims for the compiled build's socket I/O (no .py twin: callers use them only when
# compiled, see ``_NATIVE`` in stream.py, and keep the socket-method path for pure mode).
#
# They behave like socket.recv/recv_into/send on a non-blocking socket: EINTR is retried
# after running signal handlers (PEP 475), other errors raise the matching OSError subclass
# (BlockingIOError for EAGAIN, ...). send uses MSG_NOSIGNAL so a vanished peer is EPIPE, not
# SIGPIPE, even in an embedding application that did not ignore SIGPIPE.
#
# Per-loop state (tideloop_rx): what the reading shims reuse lives in a tideloop_rx that one
# loop owns (base.py's RecvState, loop._recv_state; every transport core of the loop keeps a
# reference): the receive buffer, the spare bytes objects, the last datagram's source address.
# Only the loop's thread reads through it, so loops in different threads share none of it.
# (These were process-wide statics. With the GIL that was safe, for no shim releases the GIL
# or runs Python code between filling the buffer or the address and consuming it; with two
# reads truly at once, as under free threading, one loop's bytes could reach another's
# protocol.) Per loop rather than per thread: it is freed with the loop, spares included, and
# a loop may run on one thread and later on another.
#
# Datagrams (AF_INET/AF_INET6 only): tideloop_recvfrom_data reads one datagram like
# socket.recvfrom and keeps its source address, raw, in rx; the caller asks whether it equals
# the raw address it cached (tideloop_last_addr_is) and only otherwise builds the raw copy
# (tideloop_last_addr_raw) and from it the address tuple (tideloop_addr_tuple: exactly
# socket.recvfrom's tuple). tideloop_sendto_raw sends to such a raw address. A server that
# answers the address it was given then parses and formats no address at all.
#
# tideloop_recv_bytes reads into rx's 256 KiB buffer and copies out exactly what came: no
# 256 KiB allocation and shrink per read (socket.recv(n) allocates n bytes up front). The read
# and the copy happen in one call, without releasing the GIL or running Python code.
#
# tideloop_recycle_bytes(rx, data) is called by a stream transport once data_received(data)
# has returned, and again once it has sent a pass's deferred write: if nothing but the caller
# references `data` any more (refcount 1), and it is over 512 bytes (below that pymalloc is
# cheap) and at most 64 KiB, it joins rx's spares (a stack of at most 16 of one size, 256 KiB
# in all; a bytes of another size replaces them), and the loop's next read of exactly its
# length reuses the top one (new contents, cached hash reset) instead of a malloc and a free:
# a glibc round trip of ~500 instructions for 1 KiB, whose chunk is just above tcache's reach.
# Several, because an echo's bytes now live until the pass's end: ten connections read in one
# pass are ten live objects. No one can observe the reuse: the object was
# unreachable. Off where the refcount is not exact (free-threaded builds) and on Pythons
# newer than we test.
#
# tideloop_recv_bytes_hint is the stream transports' read: below TIDELOOP_DIRECT_MIN it is
# tideloop_recv_bytes; from there up the caller's hint (the size of its last read) says a
# large read is likely, and one recvmsg reads the first `hint` bytes straight into a new bytes
# object and any more into rx's buffer. The kernel's copy is then the only copy of what
# fitted: a 100 KiB read no longer pays a 100 KiB memcpy in user space. The object is shrunk
# (realloc in place) or grown by what overflowed, so the result is exactly the bytes read.

cdef extern from *:
    """
    #include <sys/types.h>
    #include <sys/socket.h>
    #include <sys/uio.h>
    #include <errno.h>
    #include <string.h>
    #include <netinet/in.h>
    #include <arpa/inet.h>

    #define TIDELOOP_RECV_BUFSIZE (256 * 1024)

    #if !defined(Py_GIL_DISABLED) && PY_VERSION_HEX < 0x030F0000
    #define TIDELOOP_SPARE 1
    #endif

    /* One loop's read state (owned by base.py's RecvState). */
    /* Spares kept at once: a pass that reads n connections before any of their bytes die
       (a stream transport sends a pass's echoes at its end) recycles up to n of them. */
    #define TIDELOOP_NSPARE 16
    #define TIDELOOP_SPARE_BYTES (256 * 1024)

    typedef struct {
        PyObject *spares[TIDELOOP_NSPARE];  /* bytes objects nobody else references, a stack */
        int nspare;
        Py_ssize_t spare_bytes;             /* their total size */
        socklen_t addrlen;  /* the last datagram's source address (0: none) */
        struct sockaddr_storage addr;
        char buf[TIDELOOP_RECV_BUFSIZE];  /* scratch of one read; never touched in full */
    } tideloop_rx;

    /* buf is not zeroed: its pages stay unmapped until a read reaches them. */
    static CYTHON_UNUSED tideloop_rx *tideloop_rx_new(void) {
        tideloop_rx *rx = (tideloop_rx *)PyMem_RawMalloc(sizeof(tideloop_rx));
        if (rx == NULL) return NULL;
        rx->nspare = 0;
        rx->spare_bytes = 0;
        rx->addrlen = 0;
        return rx;
    }

    static CYTHON_UNUSED void tideloop_rx_free(tideloop_rx *rx) {
        if (rx == NULL) return;
        while (rx->nspare > 0) {
            rx->nspare--;
            Py_CLEAR(rx->spares[rx->nspare]);
        }
        PyMem_RawFree(rx);
    }

    static CYTHON_UNUSED PyObject *tideloop_bytes_from_buffer(tideloop_rx *rx, Py_ssize_t n) {
    #ifdef TIDELOOP_SPARE
        PyObject *b = rx->nspare > 0 ? rx->spares[rx->nspare - 1] : NULL;
        if (b != NULL && Py_SIZE(b) == n) {
            rx->nspare--;
            rx->spares[rx->nspare] = NULL;
            rx->spare_bytes -= n;
            memcpy(PyBytes_AS_STRING(b), rx->buf, (size_t)n);
            _Py_COMP_DIAG_PUSH
            _Py_COMP_DIAG_IGNORE_DEPR_DECLS
            ((PyBytesObject *)b)->ob_shash = -1;
            _Py_COMP_DIAG_POP
            return b;
        }
    #endif
        return PyBytes_FromStringAndSize(rx->buf, n);
    }

    static CYTHON_UNUSED void tideloop_recycle_bytes(tideloop_rx *rx, PyObject *b) {
    #ifdef TIDELOOP_SPARE
        if (Py_REFCNT(b) == 1 && PyBytes_CheckExact(b) && Py_SIZE(b) > 512
                && Py_SIZE(b) <= 65536) {
            if (rx->nspare > 0 && Py_SIZE(rx->spares[rx->nspare - 1]) != Py_SIZE(b)) {
                /* Another size now: the old ones would only be taken after this one. */
                while (rx->nspare > 0) {
                    rx->nspare--;
                    Py_CLEAR(rx->spares[rx->nspare]);
                }
                rx->spare_bytes = 0;
            }
            if (rx->nspare == TIDELOOP_NSPARE
                    || rx->spare_bytes + Py_SIZE(b) > TIDELOOP_SPARE_BYTES) return;
            Py_INCREF(b);
            rx->spares[rx->nspare++] = b;
            rx->spare_bytes += Py_SIZE(b);
        }
    #endif
    }

    static CYTHON_UNUSED PyObject *tideloop_recv_bytes(tideloop_rx *rx, int fd,
                                                       Py_ssize_t size) {
        ssize_t n;
        if (size > TIDELOOP_RECV_BUFSIZE) size = TIDELOOP_RECV_BUFSIZE;
        for (;;) {
            n = recv(fd, rx->buf, (size_t)size, 0);
            if (n >= 0) return tideloop_bytes_from_buffer(rx, n);
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) return NULL;
                continue;
            }
            return PyErr_SetFromErrno(PyExc_OSError);
        }
    }

    #define TIDELOOP_DIRECT_MIN (16 * 1024)

    static CYTHON_UNUSED PyObject *tideloop_recv_bytes_hint(tideloop_rx *rx, int fd,
                                                            Py_ssize_t size, Py_ssize_t hint) {
        PyObject *b;
        struct iovec iov[2];
        struct msghdr msg;
        ssize_t n;
        int err;
        if (size > TIDELOOP_RECV_BUFSIZE) size = TIDELOOP_RECV_BUFSIZE;
        if (hint < TIDELOOP_DIRECT_MIN || size < TIDELOOP_DIRECT_MIN)
            return tideloop_recv_bytes(rx, fd, size);
        if (hint > size) hint = size;
        b = PyBytes_FromStringAndSize(NULL, hint);
        if (b == NULL) return NULL;
        iov[0].iov_base = PyBytes_AS_STRING(b);
        iov[0].iov_len = (size_t)hint;
        iov[1].iov_base = rx->buf;
        iov[1].iov_len = (size_t)(size - hint);
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = iov;
        msg.msg_iovlen = size > hint ? 2 : 1;
        for (;;) {
            n = recvmsg(fd, &msg, 0);
            if (n >= 0) break;
            err = errno;
            if (err == EINTR) {
                if (PyErr_CheckSignals() < 0) { Py_DECREF(b); return NULL; }
                continue;
            }
            Py_DECREF(b);
            errno = err;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (n == hint) return b;
        /* Shrink (in place) or grow; _PyBytes_Resize frees b and sets it NULL on failure. */
        if (_PyBytes_Resize(&b, (Py_ssize_t)n) < 0) return NULL;
        if (n > hint) memcpy(PyBytes_AS_STRING(b) + hint, rx->buf, (size_t)(n - hint));
        return b;
    }

    static CYTHON_UNUSED Py_ssize_t tideloop_recv_into(int fd, PyObject *buffer) {
        Py_buffer view;
        ssize_t n;
        if (PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE) < 0) {
            /* Read-only (BufferError) or no buffer at all: socket.recv_into's TypeError. */
            if (PyErr_ExceptionMatches(PyExc_BufferError) ||
                    PyErr_ExceptionMatches(PyExc_TypeError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_TypeError,
                             "recv_into() argument 1 must be read-write bytes-like object, "
                             "not %.200s", Py_TYPE(buffer)->tp_name);
            }
            return -1;
        }
        for (;;) {
            n = recv(fd, view.buf, (size_t)view.len, 0);
            if (n >= 0) break;
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) { PyBuffer_Release(&view); return -1; }
                continue;
            }
            PyErr_SetFromErrno(PyExc_OSError);
            PyBuffer_Release(&view);
            return -1;
        }
        PyBuffer_Release(&view);
        return (Py_ssize_t)n;
    }

    static CYTHON_UNUSED PyObject *tideloop_recvfrom_data(tideloop_rx *rx, int fd,
                                                          Py_ssize_t size) {
        ssize_t n;
        if (size > TIDELOOP_RECV_BUFSIZE) size = TIDELOOP_RECV_BUFSIZE;
        for (;;) {
            rx->addrlen = sizeof(rx->addr);
            n = recvfrom(fd, rx->buf, (size_t)size, 0, (struct sockaddr *)&rx->addr,
                         &rx->addrlen);
            if (n >= 0) return PyBytes_FromStringAndSize(rx->buf, n);
            rx->addrlen = 0;
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) return NULL;
                continue;
            }
            return PyErr_SetFromErrno(PyExc_OSError);
        }
    }

    /* Whether raw (bytes) is the address of the datagram tideloop_recvfrom_data just read. */
    static CYTHON_UNUSED int tideloop_last_addr_is(tideloop_rx *rx, PyObject *raw) {
        return raw != NULL && PyBytes_CheckExact(raw)
            && PyBytes_GET_SIZE(raw) == (Py_ssize_t)rx->addrlen
            && memcmp(PyBytes_AS_STRING(raw), &rx->addr, rx->addrlen) == 0;
    }

    static CYTHON_UNUSED PyObject *tideloop_last_addr_raw(tideloop_rx *rx) {
        return PyBytes_FromStringAndSize((const char *)&rx->addr, (Py_ssize_t)rx->addrlen);
    }

    /* socket.recvfrom's address tuple for a raw sockaddr (bytes, from tideloop_last_addr_raw):
       CPython's make_ipv4_addr / make_ipv6_addr. Reads only its argument, so a collection
       triggered while building the tuple cannot change what it formats. */
    static CYTHON_UNUSED PyObject *tideloop_addr_tuple(PyObject *raw) {
        char text[INET6_ADDRSTRLEN];
        struct sockaddr_storage sa;
        Py_ssize_t len;
        if (!PyBytes_CheckExact(raw)) {
            PyErr_SetString(PyExc_TypeError, "tideloop: raw address must be bytes");
            return NULL;
        }
        len = PyBytes_GET_SIZE(raw);
        if (len > (Py_ssize_t)sizeof(sa)) len = (Py_ssize_t)sizeof(sa);
        memset(&sa, 0, sizeof(sa));
        memcpy(&sa, PyBytes_AS_STRING(raw), (size_t)len);
        if (sa.ss_family == AF_INET && len >= (Py_ssize_t)sizeof(struct sockaddr_in)) {
            struct sockaddr_in *a = (struct sockaddr_in *)&sa;
            if (inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text)) == NULL)
                return PyErr_SetFromErrno(PyExc_OSError);
            return Py_BuildValue("(si)", text, (int)ntohs(a->sin_port));
        }
        if (sa.ss_family == AF_INET6 && len >= (Py_ssize_t)sizeof(struct sockaddr_in6)) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&sa;
            if (inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text)) == NULL)
                return PyErr_SetFromErrno(PyExc_OSError);
            return Py_BuildValue("(siII)", text, (int)ntohs(a->sin6_port),
                                 (unsigned int)ntohl(a->sin6_flowinfo),
                                 (unsigned int)a->sin6_scope_id);
        }
        PyErr_SetString(PyExc_OSError, "tideloop: not an IPv4/IPv6 address");
        return NULL;
    }

    static CYTHON_UNUSED Py_ssize_t tideloop_sendto_raw(int fd, PyObject *data, PyObject *raw) {
        Py_buffer view;
        ssize_t n;
        if (!PyBytes_CheckExact(raw)) {
            PyErr_SetString(PyExc_TypeError, "tideloop: raw address must be bytes");
            return -1;
        }
        if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return -1;
        for (;;) {
            n = sendto(fd, view.buf, (size_t)view.len, 0,
                       (const struct sockaddr *)PyBytes_AS_STRING(raw),
                       (socklen_t)PyBytes_GET_SIZE(raw));
            if (n >= 0) break;
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) { PyBuffer_Release(&view); return -1; }
                continue;
            }
            PyErr_SetFromErrno(PyExc_OSError);
            PyBuffer_Release(&view);
            return -1;
        }
        PyBuffer_Release(&view);
        return (Py_ssize_t)n;
    }

    static CYTHON_UNUSED Py_ssize_t tideloop_send(int fd, PyObject *data) {
        Py_buffer view;
        ssize_t n;
        if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return -1;
        for (;;) {
            n = send(fd, view.buf, (size_t)view.len, MSG_NOSIGNAL);
            if (n >= 0) break;
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) { PyBuffer_Release(&view); return -1; }
                continue;
            }
            PyErr_SetFromErrno(PyExc_OSError);
            PyBuffer_Release(&view);
            return -1;
        }
        PyBuffer_Release(&view);
        return (Py_ssize_t)n;
    }

    /* One sendmsg of a list's bytes-like items (at most TIDELOOP_SENDV_MAX of them; the
       caller sends the rest after): the bytes the kernel took. What a transport's flush of
       a pass's writes needs, without socket.sendmsg's argument parsing and list copy. */
    #define TIDELOOP_SENDV_MAX 64

    static CYTHON_UNUSED Py_ssize_t tideloop_sendv(int fd, PyObject *list) {
        struct iovec iov[TIDELOOP_SENDV_MAX];
        Py_buffer views[TIDELOOP_SENDV_MAX];
        char held[TIDELOOP_SENDV_MAX];
        struct msghdr msg;
        Py_ssize_t i, count = PyList_GET_SIZE(list);
        ssize_t n = -1;
        if (count > TIDELOOP_SENDV_MAX) count = TIDELOOP_SENDV_MAX;
        for (i = 0; i < count; i++) {
            PyObject *item = PyList_GET_ITEM(list, i);
            if (PyBytes_CheckExact(item)) {
                held[i] = 0;
                iov[i].iov_base = PyBytes_AS_STRING(item);
                iov[i].iov_len = (size_t)PyBytes_GET_SIZE(item);
            } else {
                if (PyObject_GetBuffer(item, &views[i], PyBUF_SIMPLE) < 0) goto done;
                held[i] = 1;
                iov[i].iov_base = views[i].buf;
                iov[i].iov_len = (size_t)views[i].len;
            }
        }
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)count;
        for (;;) {
            n = sendmsg(fd, &msg, MSG_NOSIGNAL);
            if (n >= 0) break;
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) break;
                continue;
            }
            PyErr_SetFromErrno(PyExc_OSError);
            break;
        }
    done:
        while (i-- > 0) {
            if (held[i]) PyBuffer_Release(&views[i]);
        }
        return n < 0 ? -1 : (Py_ssize_t)n;
    }

    /* Enter / exit a contextvars.Context around a block of C code (TransportCore's
       readiness entry points): what Context.run does, without a call per entry (entering
       a context twice raises its RuntimeError). */
    static CYTHON_UNUSED int tideloop_context_enter(PyObject *ctx) {
        return PyContext_Enter(ctx);
    }
    static CYTHON_UNUSED int tideloop_context_exit(PyObject *ctx) {
        return PyContext_Exit(ctx);
    }
    """
    ctypedef struct tideloop_rx:
        pass
    tideloop_rx *tideloop_rx_new()
    void tideloop_rx_free(tideloop_rx *rx)
    int tideloop_context_enter(object ctx) except -1
    int tideloop_context_exit(object ctx) except -1
    object tideloop_recv_bytes(tideloop_rx *rx, int fd, Py_ssize_t size)
    object tideloop_recv_bytes_hint(tideloop_rx *rx, int fd, Py_ssize_t size, Py_ssize_t hint)
    void tideloop_recycle_bytes(tideloop_rx *rx, object b)
    Py_ssize_t tideloop_recv_into(int fd, object buffer) except -1
    Py_ssize_t tideloop_send(int fd, object data) except -1
    Py_ssize_t tideloop_sendv(int fd, list chunks) except -1
    object tideloop_recvfrom_data(tideloop_rx *rx, int fd, Py_ssize_t size)
    bint tideloop_last_addr_is(tideloop_rx *rx, object raw)
    object tideloop_last_addr_raw(tideloop_rx *rx)
    object tideloop_addr_tuple(object raw)
    Py_ssize_t tideloop_sendto_raw(int fd, object data, object raw) except -1
