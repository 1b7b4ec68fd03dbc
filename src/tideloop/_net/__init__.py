"""Socket-level loop API above the core: sock_* operations, sendfile and name resolution.

``SockOpsMixin`` and ``DnsMixin`` are mixed into ``tideloop.EventLoop`` ahead of the core loop;
they reach the core only through its public reader/writer/future/executor methods.
"""

from .dns import DnsMixin
from .sockops import SockOpsMixin

__all__ = ["DnsMixin", "SockOpsMixin"]
