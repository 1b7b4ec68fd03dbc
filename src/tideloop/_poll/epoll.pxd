cimport cython

cdef int _EPOLLIN
cdef int _EPOLLOUT
cdef int _NOT_IN
cdef int _NOT_OUT
cdef object _ceil


cdef class EpollPoller:
    cdef object _epoll
    cdef object _epoll_poll

    @cython.locals(fd=int, ev=int, mask=int, result=list)
    cpdef list poll(self, object timeout)
