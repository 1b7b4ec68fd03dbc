# Compiles sockops.py (a plain Python mixin class) with Cython; nothing is typed yet.
cdef object _partial
cdef tuple _INET_FAMILIES
