cdef class IOWatcher:
    cpdef _on_readable(self)
    cpdef _on_writable(self)
