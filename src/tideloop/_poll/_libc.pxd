# C declarations used by the compiled build only (no .py twin: the .py modules that cimport
# these call them only when compiled, see ``_NATIVE`` there, and keep a pure-Python path).
#
# A small C shim lives here because pure-Python-mode Cython has no syntax for it:
# tideloop_epoll_wait releases the GIL only when the wait may block (timeout != 0), and keeps
# errno intact across re-taking the GIL. (The loop's clock is in _core/_clock.pxd.)

from libc.errno cimport errno as c_errno
from cpython.exc cimport PyErr_CheckSignals

cdef extern from *:
    """
    #if defined(__linux__)
    #include <sys/epoll.h>
    #include <errno.h>
    #include <stdlib.h>
    #define TIDELOOP_HAVE_EPOLL 1
    static inline int tideloop_epoll_wait(int epfd, struct epoll_event *events, int maxevents,
                                   int timeout_ms) {
        int n, err;
        if (timeout_ms == 0) {
            return epoll_wait(epfd, events, maxevents, 0);
        }
        Py_BEGIN_ALLOW_THREADS
        n = epoll_wait(epfd, events, maxevents, timeout_ms);
        err = errno;
        Py_END_ALLOW_THREADS
        errno = err;
        return n;
    }
    #define tideloop_alloc_events(n) \
        ((struct epoll_event *)calloc((size_t)(n), sizeof(struct epoll_event)))
    #else
    #define TIDELOOP_HAVE_EPOLL 0
    struct epoll_event { unsigned int events; union { int fd; } data; };
    static int tideloop_epoll_wait(int a, struct epoll_event *b, int c, int d) {
        errno = ENOSYS; return -1;
    }
    #define tideloop_alloc_events(n) ((struct epoll_event *)NULL)
    #endif
    """
    ctypedef union epoll_data_t:
        int fd
    struct epoll_event:
        unsigned int events
        epoll_data_t data
    const bint TIDELOOP_HAVE_EPOLL
    int tideloop_epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout_ms)
    epoll_event* tideloop_alloc_events(int n)
    void free(void* p)
