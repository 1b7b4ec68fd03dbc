"""The Net layer: the loop methods that make sockets and transports, as mixins.

One mixin per family of asyncio's loop API, each in its own module: ``connect`` (create_connection
with Happy Eyeballs, create_unix_connection, connect_accepted_socket), ``server`` (create_server,
create_unix_server, Server), ``datagram``, ``pipes``, ``subprocess`` (with ``children``: child
watching), ``tls`` (start_tls), ``sockops`` (the sock_* methods) with ``sendfile``, ``dns``
(getaddrinfo, getnameinfo) and ``registry`` (``loop._transports`` and the public add_reader
family that respects it). ``tideloop.EventLoop`` (``_eventloop.py``) mixes them in ahead of the
core; what they use of the core and of each other is declared in ``tideloop._api.LoopAPI``, and
they reach the core's fds only through its unchecked ``_add_reader``/``_remove_reader`` & co.
"""

from .dns import DnsMixin
from .sockops import SockOpsMixin

__all__ = ["DnsMixin", "SockOpsMixin"]
