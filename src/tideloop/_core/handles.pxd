# C types for handles.py (Cython pure-Python mode). Fields are public so that the
# Python-level mixins and asyncio's own code can read them, as on asyncio.Handle.
cimport cython

cdef object _copy_context
cdef object _RLock
cdef object _extract_stack
cdef object _format_helpers
cdef str _PACKAGE_DIR


cdef class Handle:
    cdef public object _callback
    cdef public object _args
    cdef public bint _cancelled
    cdef public object _loop
    cdef public object _source_traceback
    cdef public object _repr
    cdef public object _context
    cdef object __weakref__

    cpdef cancel(self)
    cpdef _run(self)


@cython.locals(handle=Handle)
cpdef Handle new_handle(object callback, tuple args, object loop, object context, bint debug)


cdef class ThreadSafeHandle(Handle):
    cdef object _lock

    cpdef cancel(self)
    cpdef _run(self)


@cython.locals(handle=ThreadSafeHandle)
cpdef ThreadSafeHandle new_threadsafe_handle(object callback, tuple args, object loop,
                                             object context, bint debug)


cdef class TimerHandle(Handle):
    cdef public bint _scheduled
    cdef public double _when


@cython.locals(timer=TimerHandle)
cpdef TimerHandle new_timer_handle(double when, object callback, tuple args, object loop,
                                   object context, bint debug)
