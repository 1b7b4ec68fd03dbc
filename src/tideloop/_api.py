"""LoopAPI: what the loop's mixins reach through ``self``, declared once.

``tideloop.EventLoop`` is the compiled core (``_core.loop.Loop``) plus Python mixins, one per
family of asyncio's loop API (``_net/*``, ``_executor.py``, ``_asyncgens.py``, ``_signals.py``,
``_core/errors.py``). A mixin method that uses anything its own class does not define types
``self`` with this protocol (``def sock_recv(self: LoopAPI, ...)``), so mypy checks that it uses
only what is declared here, and ``_eventloop.py`` checks that ``EventLoop`` provides all of it
with these signatures. The first part is what crosses a module boundary, by provider; the
second, each mixin's own members that such a method also uses (a self-typed method sees only
the protocol, so they must be declared too).

Type checking only: no module imports this one at run time (each imports it under
``TYPE_CHECKING``, with ``from __future__ import annotations``), so no ``typing.Protocol``
machinery runs, and Cython, which ignores annotations here (``annotation_typing=False``),
compiles the self-typed methods of ``sockops.py`` and ``registry.py`` unchanged.
"""

from __future__ import annotations

import concurrent.futures
import socket
import weakref
from asyncio import Future, Task
from collections.abc import Callable
from contextvars import Context
from typing import Any, Protocol

from ._core.handles import Handle
from ._net.children import ChildWatcher
from ._net.server import Server
from ._transports.subprocess import SubprocessTransport


class LoopAPI(Protocol):
    """The members of ``tideloop.EventLoop`` that its mixins use through ``self``."""

    # ------------------------------------------------------------ the core (_core/loop.py)
    _debug: bool

    def time(self) -> float: ...
    def is_closed(self) -> bool: ...
    def get_debug(self) -> bool: ...
    def _check_closed(self) -> None: ...
    def _check_callback(self, callback: Any, method: str) -> None: ...
    def call_soon(
        self, callback: Callable[..., object], *args: Any, context: Context | None = None
    ) -> Handle: ...
    def call_soon_threadsafe(
        self, callback: Callable[..., object], *args: Any, context: Context | None = None
    ) -> Handle: ...
    def create_future(self) -> Future[Any]: ...
    def create_task(self, coro: Any, **kwargs: Any) -> Task[Any]: ...
    # Unchecked fd watches: ``handle`` is a Handle (queued) or an IOWatcher (called inline).
    def _add_reader(self, fd: int, handle: Any) -> None: ...
    def _add_writer(self, fd: int, handle: Any) -> None: ...
    def _remove_reader(self, fd: int) -> bool: ...
    def _remove_writer(self, fd: int) -> bool: ...
    def _add_callback(self, handle: Handle) -> None: ...

    # ------------------------------------------------------------ _core/errors.py
    def call_exception_handler(self, context: dict[str, Any]) -> None: ...

    # ------------------------------------------------------------ _executor.py
    def run_in_executor(
        self, executor: Any, func: Callable[..., Any], *args: Any
    ) -> Future[Any]: ...

    # ------------------------------------------------------------ _net/registry.py
    _transports: weakref.WeakValueDictionary[int, Any]

    def add_reader(self, fd: Any, callback: Callable[..., object], *args: Any) -> None: ...
    def add_writer(self, fd: Any, callback: Callable[..., object], *args: Any) -> None: ...
    def remove_reader(self, fd: Any) -> bool: ...
    def remove_writer(self, fd: Any) -> bool: ...
    def _ensure_fd_no_transport(self, fd: Any) -> None: ...

    # ------------------------------------------------------------ _net/dns.py
    async def _ensure_resolved(
        self,
        address: Any,
        *,
        family: int = 0,
        type: int = socket.SOCK_STREAM,
        proto: int = 0,
        flags: int = 0,
        loop: Any = None,
    ) -> list[Any]: ...

    # ------------------------------------------------------------ _net/sockops.py
    async def sock_connect(self, sock: socket.socket, address: Any) -> None: ...
    async def sock_sendall(self, sock: socket.socket, data: Any) -> None: ...
    def _sock_wait_writable(
        self, fut: Future[Any], fd: int, callback: Callable[..., object], *args: Any
    ) -> None: ...

    # ------------------------------------------------------------ _net/pipes.py
    async def connect_read_pipe(
        self, protocol_factory: Callable[[], Any], pipe: Any
    ) -> tuple[Any, Any]: ...
    async def connect_write_pipe(
        self, protocol_factory: Callable[[], Any], pipe: Any
    ) -> tuple[Any, Any]: ...

    # ============================================================ each mixin's own members
    # --- own: AsyncGenMixin (_asyncgens.py)
    _old_agen_hooks: Any

    def _asyncgen_finalizer_hook(self, agen: Any) -> None: ...
    def _asyncgen_firstiter_hook(self, agen: Any) -> None: ...

    _asyncgens: weakref.WeakSet[Any]
    _asyncgens_shutdown_called: bool

    # --- own: ConnectMixin (_net/connect.py)
    async def _connect_sock(
        self, exceptions: list, addr_info: tuple, local_addr_infos: Any = None
    ) -> Any: ...
    async def _connect_any(
        self, infos: list, laddr_infos: list | None, delay: Any, all_errors: bool
    ) -> Any: ...
    async def _create_connection_transport(
        self,
        sock: Any,
        protocol_factory: Any,
        ssl: Any,
        server_hostname: Any,
        server_side: bool = False,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
    ) -> tuple[Any, Any]: ...

    # --- own: DatagramMixin (_net/datagram.py)
    def _make_datagram_transport(
        self,
        sock: Any,
        protocol: Any,
        address: Any = None,
        waiter: Any = None,
        extra: dict | None = None,
    ) -> Any: ...
    async def _open_datagram_socket(
        self,
        addr_pairs_info: Any,
        local_addr: Any,
        remote_addr: Any,
        reuse_port: Any,
        allow_broadcast: Any,
    ) -> tuple[socket.socket, Any]: ...
    async def _resolve_pairs(
        self, local_addr: Any, remote_addr: Any, family: int, proto: int, flags: int
    ) -> list: ...

    # --- own: DnsMixin (_net/dns.py)
    def _getaddrinfo_debug(
        self,
        host: Any,
        port: Any,
        family: Any,
        type: Any,
        proto: Any,
        flags: Any,
        extra_flags: int = 0,
    ) -> list: ...

    # --- own: ExecutorMixin (_executor.py)
    _default_executor: concurrent.futures.ThreadPoolExecutor | None
    _executor_shutdown_called: bool

    def _do_shutdown(self, future: Any) -> None: ...

    # --- own: SendfileMixin (_net/sendfile.py)
    async def _sendfile_fallback(self, transp: Any, file: Any, offset: Any, count: Any) -> int: ...
    async def _sendfile_native(self, transp: Any, file: Any, offset: Any, count: Any) -> int: ...
    def _check_sendfile_params(self, sock: Any, file: Any, offset: Any, count: Any) -> None: ...
    async def _sock_sendfile_fallback(
        self, sock: Any, file: Any, offset: int, count: Any
    ) -> int: ...
    async def _sock_sendfile_native(self, sock: Any, file: Any, offset: int, count: Any) -> int: ...
    def _sock_sendfile_step(
        self,
        fut: Any,
        sock: Any,
        fileno: int,
        count: Any,
        blocksize: int,
        progress: list,
        registered: bool,
    ) -> None: ...
    async def sock_sendfile(
        self, sock: Any, file: Any, offset: Any = 0, count: Any = None, *, fallback: bool = True
    ) -> int: ...

    # --- own: ServerMixin (_net/server.py)
    _unix_server_sockets: dict | None

    def _bind_all(
        self, infos: list, reuse_address: Any, reuse_port: Any, keep_alive: Any
    ) -> list: ...
    async def _create_server_getaddrinfo(
        self, host: Any, port: Any, family: Any, flags: Any
    ) -> list: ...
    async def _serve(
        self,
        sockets: list,
        protocol_factory: Any,
        ssl: Any,
        backlog: int,
        ssl_handshake_timeout: Any,
        ssl_shutdown_timeout: Any,
        start_serving: bool,
    ) -> Server: ...

    # --- own: SignalsMixin (_signals.py)
    def _handle_signal(self, sig: int) -> None: ...

    _csock: Any
    _signal_handlers: dict[int, Handle]
    _ssock: Any

    def _check_signal(self, sig: int) -> None: ...
    def _read_signals(self) -> None: ...
    def remove_signal_handler(self, sig: int) -> bool: ...

    # --- own: SockOpsMixin (_net/sockops.py)
    _sock_readers: dict | None
    _sock_writers: dict | None

    def _sock_accept(self, fut: Any, sock: Any) -> None: ...
    def _sock_check(self, sock: Any) -> None: ...
    def _sock_connect_cb(self, fut: Any, sock: Any, address: Any) -> None: ...
    def _sock_reader_done(self, fd: int, fut: Any) -> None: ...
    def _sock_retry(self, fut: Any, sock: Any, method: str, *args: Any) -> None: ...
    def _sock_sendall(self, fut: Any, sock: Any, view: memoryview, pos: list) -> None: ...
    def _sock_wait_readable(self, fut: Any, fd: int, callback: Any, *args: Any) -> None: ...
    def _sock_writer_done(self, fd: int, fut: Any) -> None: ...

    # --- own: SubprocessMixin (_net/subprocess.py)
    async def _start_subprocess(
        self,
        protocol_factory: Any,
        popen_args: Any,
        shell: bool,
        debug_log: str,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        kwargs: dict,
    ) -> tuple[Any, Any]: ...

    _child_watcher: ChildWatcher | None

    def _child_watcher_callback(self, pid: int, returncode: int, transp: Any) -> None: ...
    async def _connect_subprocess_pipes(self, transp: SubprocessTransport, waiter: Any) -> None: ...
    def _log_subprocess(self, msg: str, stdin: Any, stdout: Any, stderr: Any) -> None: ...
    async def _make_subprocess_transport(
        self,
        protocol: Any,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        extra: dict | None = None,
        **kwargs: Any,
    ) -> SubprocessTransport: ...
    async def _make_subprocess_transport_watched(
        self,
        watcher: Any,
        protocol: Any,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        extra: dict | None,
        **kwargs: Any,
    ) -> SubprocessTransport: ...

    # --- own: TransportRegistryMixin (_net/registry.py)
