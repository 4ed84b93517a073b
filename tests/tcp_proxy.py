"""A TCP proxy for fault tests: clients connect to it instead of the server, and the test
can cut the line (every live connection closed, new ones refused) as if the server stopped.

    with TcpProxy(("127.0.0.1", 5432)) as proxy:     # listens on a free loopback port
        url = sa.make_url(server_url).set(host="127.0.0.1", port=proxy.port)
        ...                                           # clients use url
        with proxy.outage() as closed:                # the server is "down" in here
            threading.Event().wait(5)

During an outage the listening socket is closed, so a client's connect is refused
(``ECONNREFUSED``, what a stopped server gives); afterwards the proxy listens on the same port
again and forwards as before. ``latency_s`` (settable at any time) holds every answer from the
server back that long, as a server that far away would: each round trip takes ``latency_s``
more. Each connection is served by one thread; an outage and
:meth:`TcpProxy.close` end those threads and join them, so nothing outlives the proxy.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import TracebackType

_CHUNK = 65536


class _Pipe:
    """One client connection and its upstream connection, pumped by one thread."""

    def __init__(
        self, client: socket.socket, upstream: socket.socket, latency: Callable[[], float]
    ) -> None:
        self.client = client
        self.upstream = upstream
        self.latency = latency
        self.thread = threading.Thread(target=self._pump, name="tcp-proxy-pipe", daemon=True)

    def _pump(self) -> None:
        peer = {self.client: self.upstream, self.upstream: self.client}
        with selectors.DefaultSelector() as selector:
            for sock in peer:
                selector.register(sock, selectors.EVENT_READ)
            try:
                while True:
                    for key, _ in selector.select():
                        source: socket.socket = key.fileobj  # type: ignore[assignment]
                        data = source.recv(_CHUNK)
                        if not data:  # one side closed (or kill() shut both): end both
                            return
                        delay = self.latency() if source is self.upstream else 0.0
                        if delay > 0:
                            time.sleep(delay)  # the answer travels from far away
                        peer[source].sendall(data)
            except OSError:
                return
            finally:
                self._close()

    def _close(self) -> None:
        for sock in (self.client, self.upstream):
            with suppress(OSError):
                sock.close()

    def kill(self) -> None:
        """Cut both sides now; ``shutdown`` (unlike ``close``) wakes the pumping thread."""
        for sock in (self.client, self.upstream):
            with suppress(OSError):  # already closed by the pump
                sock.shutdown(socket.SHUT_RDWR)


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; :meth:`outage` plays a server stop."""

    def __init__(
        self, target: tuple[str, int], *, host: str = "127.0.0.1", latency_s: float = 0.0
    ) -> None:
        self.target = target
        self.host = host
        self.latency_s = latency_s  # added to every round trip through the proxy
        self.port = 0  # a free port, chosen by the first bind and kept across outages
        self.cut_connections = 0  # how many live connections the outages have closed
        self._lock = threading.Lock()
        self._pipes: set[_Pipe] = set()
        self._listener: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._acceptor: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> TcpProxy:
        """Listen (again, on the same port after an outage) and forward new connections."""
        if self._acceptor is not None:
            raise RuntimeError("the proxy is already listening; call cut() or close() first")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # The port's old connections may linger in TIME_WAIT: rebinding it must still work.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._wake = socket.socketpair()
        self._acceptor = threading.Thread(
            target=self._accept, args=(listener, self._wake[0]), name="tcp-proxy-accept"
        )
        self._acceptor.daemon = True
        self._acceptor.start()
        return self

    def cut(self) -> int:
        """Stop listening and close every live connection; returns how many were closed."""
        if self._acceptor is not None and self._wake is not None:
            self._wake[1].send(b"x")
            self._acceptor.join()
            for sock in (*self._wake, *([self._listener] if self._listener else [])):
                sock.close()
        self._acceptor = self._wake = self._listener = None
        with self._lock:
            pipes, self._pipes = list(self._pipes), set()
        live = sum(pipe.thread.is_alive() for pipe in pipes)
        for pipe in pipes:
            pipe.kill()
        for pipe in pipes:
            pipe.thread.join()
        self.cut_connections += live
        return live

    @contextmanager
    def outage(self) -> Iterator[int]:
        """The server is unreachable inside the block (yields how many connections died)."""
        closed = self.cut()
        try:
            yield closed
        finally:
            self.start()

    def close(self) -> None:
        """Stop for good: no listener, no connections, no threads left."""
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def live_connections(self) -> int:
        with self._lock:
            return sum(pipe.thread.is_alive() for pipe in self._pipes)

    # -- the accepting thread --------------------------------------------------------------

    def _accept(self, listener: socket.socket, wake: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if wake in ready:
                    return
                try:
                    client, _ = listener.accept()
                except OSError:
                    continue
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    client.close()  # the real server is down: so are we
                    continue
                upstream.settimeout(None)
                pipe = _Pipe(client, upstream, lambda: self.latency_s)
                with self._lock:
                    self._pipes = {p for p in self._pipes if p.thread.is_alive()}
                    self._pipes.add(pipe)
                pipe.thread.start()
