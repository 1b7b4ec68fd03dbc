cdef class Waker:
    cdef int _fd
    cdef bint _eventfd
    cdef object _rsock
    cdef object _wsock
    cdef bint _closed

    cpdef wake(self)
    cpdef drain(self)
