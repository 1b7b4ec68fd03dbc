cimport cython

from .handles cimport TimerHandle

cpdef heap_push(list heap, TimerHandle timer)
cpdef TimerHandle heap_pop(list heap)

@cython.locals(newitem=TimerHandle, parent=TimerHandle, when=double, parentpos=Py_ssize_t)
cdef _siftdown(list heap, Py_ssize_t startpos, Py_ssize_t pos)

@cython.locals(
    newitem=TimerHandle, left=TimerHandle, right=TimerHandle, endpos=Py_ssize_t,
    startpos=Py_ssize_t, childpos=Py_ssize_t, rightpos=Py_ssize_t,
)
cdef _siftup(list heap, Py_ssize_t pos)
