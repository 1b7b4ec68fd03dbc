# C shims for the compiled build's socket I/O (no .py twin: callers use them only when
# compiled, see ``_NATIVE`` in stream.py, and keep the socket-method path for pure mode).
#
# They behave like socket.recv/recv_into/send on a non-blocking socket: EINTR is retried
# after running signal handlers (PEP 475), other errors raise the matching OSError subclass
# (BlockingIOError for EAGAIN, ...). send uses MSG_NOSIGNAL so a vanished peer is EPIPE, not
# SIGPIPE, even in an embedding application that did not ignore SIGPIPE.
#
# tideloop_recv_bytes reads into one static 256 KiB buffer and copies out exactly what came:
# no 256 KiB allocation and shrink per read (socket.recv(n) allocates n bytes up front). The
# buffer is shared by every loop of the process; that is safe because the read and the copy
# happen without releasing the GIL.

cdef extern from *:
    """
    #include <sys/types.h>
    #include <sys/socket.h>
    #include <errno.h>

    #define TIDELOOP_RECV_BUFSIZE (256 * 1024)
    static char tideloop_recv_buffer[TIDELOOP_RECV_BUFSIZE];

    static CYTHON_UNUSED PyObject *tideloop_recv_bytes(int fd, Py_ssize_t size) {
        ssize_t n;
        if (size > TIDELOOP_RECV_BUFSIZE) size = TIDELOOP_RECV_BUFSIZE;
        for (;;) {
            n = recv(fd, tideloop_recv_buffer, (size_t)size, 0);
            if (n >= 0) return PyBytes_FromStringAndSize(tideloop_recv_buffer, n);
            if (errno == EINTR) {
                if (PyErr_CheckSignals() < 0) return NULL;
                continue;
            }
            return PyErr_SetFromErrno(PyExc_OSError);
        }
    }

    static CYTHON_UNUSED Py_ssize_t tideloop_recv_into(int fd, PyObject *buffer) {
        Py_buffer view;
        ssize_t n;
        if (PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE) < 0) return -1;
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
    """
    object tideloop_recv_bytes(int fd, Py_ssize_t size)
    Py_ssize_t tideloop_recv_into(int fd, object buffer) except -1
    Py_ssize_t tideloop_send(int fd, object data) except -1
