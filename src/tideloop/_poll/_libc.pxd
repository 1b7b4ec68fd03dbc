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

# io_uring (the io_uring backend, _poll/uring.py): raw syscalls and the ring's shared memory.
# No <linux/io_uring.h>: the ABI is stable and the few numbers used are spelled here, so the
# build needs no particular kernel headers (Debian 12's are older than what is probed for at
# run time). Memory is addressed by size_t; loads of the kernel's indices are acquire, stores
# of ours release (what liburing's io_uring_smp_load_acquire/store_release are).
# tideloop_uring_enter releases the GIL only when it may block (min_complete > 0) and returns
# -errno on failure, as the kernel does.
cdef extern from *:
    """
    #include <errno.h>
    #if defined(__linux__)
    #include <sys/syscall.h>
    #include <unistd.h>
    #include <string.h>
    #include <stdint.h>
    #ifndef __NR_io_uring_setup
    #define __NR_io_uring_setup 425
    #define __NR_io_uring_enter 426
    #endif
    struct tideloop_uring_getevents_arg {
        uint64_t sigmask; uint32_t sigmask_sz; uint32_t min_wait_usec; uint64_t ts;
    };
    struct tideloop_kernel_timespec { int64_t tv_sec; int64_t tv_nsec; };
    static int tideloop_uring_enter(int fd, unsigned to_submit, unsigned min_complete,
                                    unsigned flags, long long timeout_ns) {
        struct tideloop_kernel_timespec ts;
        struct tideloop_uring_getevents_arg arg;
        long r; int err;
        memset(&arg, 0, sizeof(arg));
        if (timeout_ns >= 0) {
            ts.tv_sec = timeout_ns / 1000000000LL;
            ts.tv_nsec = timeout_ns % 1000000000LL;
            arg.ts = (uint64_t)(uintptr_t)&ts;
        }
        flags |= 8u;  /* IORING_ENTER_EXT_ARG */
        if (min_complete == 0) {
            r = syscall(__NR_io_uring_enter, fd, to_submit, 0, flags, &arg, sizeof(arg));
            return r < 0 ? -errno : (int)r;
        }
        Py_BEGIN_ALLOW_THREADS
        r = syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, &arg, sizeof(arg));
        err = errno;
        Py_END_ALLOW_THREADS
        return r < 0 ? -err : (int)r;
    }
    static inline unsigned tideloop_load_acquire_u32(size_t addr) {
        return __atomic_load_n((unsigned *)addr, __ATOMIC_ACQUIRE);
    }
    static inline void tideloop_store_release_u32(size_t addr, unsigned v) {
        __atomic_store_n((unsigned *)addr, v, __ATOMIC_RELEASE);
    }
    static inline void tideloop_uring_prep(size_t sqe, unsigned char opcode, int fd,
                                           unsigned long long off, unsigned long long addr,
                                           unsigned len, unsigned op_flags,
                                           unsigned long long user_data) {
        unsigned char *p = (unsigned char *)sqe;
        memset(p, 0, 64);
        p[0] = opcode;
        memcpy(p + 4, &fd, 4);
        memcpy(p + 8, &off, 8);
        memcpy(p + 16, &addr, 8);
        memcpy(p + 24, &len, 4);
        memcpy(p + 28, &op_flags, 4);
        memcpy(p + 32, &user_data, 8);
    }
    static inline unsigned long long tideloop_cqe_user_data(size_t cqe) {
        unsigned long long v; memcpy(&v, (void *)cqe, 8); return v;
    }
    static inline int tideloop_cqe_res(size_t cqe) {
        int v; memcpy(&v, (char *)cqe + 8, 4); return v;
    }
    static inline unsigned tideloop_cqe_flags(size_t cqe) {
        unsigned v; memcpy(&v, (char *)cqe + 12, 4); return v;
    }
    /* The SQE fields prep leaves zero: flags (byte 1), ioprio (2), buf_group (40). */
    static inline void tideloop_uring_prep_extra(size_t sqe, unsigned char flags,
                                                 unsigned short ioprio,
                                                 unsigned short buf_group) {
        unsigned char *p = (unsigned char *)sqe;
        p[1] = flags;
        memcpy(p + 2, &ioprio, 2);
        memcpy(p + 40, &buf_group, 2);
    }
    /* One entry of a provided-buffer ring (struct io_uring_buf: addr, len, bid; its last two
       bytes are left alone: entry 0's are the ring's tail). */
    static inline void tideloop_pbuf_put(size_t entry, unsigned long long addr, unsigned len,
                                         unsigned short bid) {
        unsigned char *p = (unsigned char *)entry;
        memcpy(p, &addr, 8);
        memcpy(p + 8, &len, 4);
        memcpy(p + 12, &bid, 2);
    }
    static inline void tideloop_store_release_u16(size_t addr, unsigned short v) {
        __atomic_store_n((unsigned short *)addr, v, __ATOMIC_RELEASE);
    }
    static inline PyObject *tideloop_bytes_at(size_t addr, Py_ssize_t n) {
        return PyBytes_FromStringAndSize((const char *)addr, n);
    }
    #else
    static int tideloop_uring_enter(int a, unsigned b, unsigned c, unsigned d, long long e) {
        return -ENOSYS;
    }
    static inline unsigned tideloop_load_acquire_u32(size_t addr) { return 0; }
    static inline void tideloop_store_release_u32(size_t addr, unsigned v) {}
    static inline void tideloop_uring_prep(size_t a, unsigned char b, int c,
        unsigned long long d, unsigned long long e, unsigned f, unsigned g,
        unsigned long long h) {}
    static inline unsigned long long tideloop_cqe_user_data(size_t c) { return 0; }
    static inline int tideloop_cqe_res(size_t c) { return 0; }
    static inline unsigned tideloop_cqe_flags(size_t c) { return 0; }
    static inline void tideloop_uring_prep_extra(size_t a, unsigned char b, unsigned short c,
                                                 unsigned short d) {}
    static inline void tideloop_pbuf_put(size_t a, unsigned long long b, unsigned c,
                                         unsigned short d) {}
    static inline void tideloop_store_release_u16(size_t a, unsigned short v) {}
    static inline PyObject *tideloop_bytes_at(size_t addr, Py_ssize_t n) {
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    #endif
    """
    int tideloop_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags,
                             long long timeout_ns)
    unsigned tideloop_load_acquire_u32(size_t addr) noexcept
    void tideloop_store_release_u32(size_t addr, unsigned v) noexcept
    void tideloop_uring_prep(size_t sqe, unsigned char opcode, int fd, unsigned long long off,
                             unsigned long long addr, unsigned len, unsigned op_flags,
                             unsigned long long user_data) noexcept
    unsigned long long tideloop_cqe_user_data(size_t cqe) noexcept
    int tideloop_cqe_res(size_t cqe) noexcept
    unsigned tideloop_cqe_flags(size_t cqe) noexcept
    void tideloop_uring_prep_extra(size_t sqe, unsigned char flags, unsigned short ioprio,
                                   unsigned short buf_group) noexcept
    void tideloop_pbuf_put(size_t entry, unsigned long long addr, unsigned len,
                           unsigned short bid) noexcept
    void tideloop_store_release_u16(size_t addr, unsigned short v) noexcept
    object tideloop_bytes_at(size_t addr, Py_ssize_t n)
