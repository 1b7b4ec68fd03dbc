# Compiles registry.py (a plain Python mixin class) with Cython, like sockops.pxd: the public
# add_reader/remove_reader sit on the sock_* methods' wait path.
from tideloop._core.handles cimport new_handle

cdef object _fileobj_to_fd(object fileobj)
