cdef class IOWatcher:
    cdef public IOWatcher _flush_next
    cpdef _on_readable(self)
    cpdef _on_writable(self)
    cpdef _on_flush(self)
