# C types for metrics.py (Cython pure-Python mode).
cimport cython

cdef object array
cdef object deque
cdef unsigned long long _LAG_CAP
cdef double _LAG_CAP_SECONDS


@cython.locals(bits=int, v="unsigned long long", shift=int)
cpdef int lag_bucket(unsigned long long ns)


@cython.final
cdef class LoopStats:
    cdef public double elapsed
    cdef public double t_run
    cdef public double idle
    cdef public double t_last
    cdef public double t_item
    cdef public bint in_poll
    cdef public unsigned long long passes
    cdef public unsigned long long callbacks
    cdef public unsigned long long io_events
    cdef public unsigned long long timers
    cdef public unsigned long long lag_count
    cdef public unsigned long long lag_zeros
    cdef public unsigned long long lag_sum_ns
    cdef public unsigned long long lag_max_ns
    cdef unsigned long long[::1] lag_counts
    cdef public object lag_array
    cdef public unsigned long long slow_count
    cdef public object slow_recent
    cdef public object slow_hook
    cdef public Py_ssize_t transports
    cdef public Py_ssize_t connections
    cdef public unsigned long long bytes_read
    cdef public unsigned long long bytes_written

    @cython.locals(ns="unsigned long long")
    cpdef record_lag(self, double seconds)
