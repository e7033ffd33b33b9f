"""The loopback HTTP server of the local tools: both provider emulators (Cliprise:
:mod:`mediagen.sandbox.server`, Clipia: :mod:`mediagen.sandbox.clipia`) and the embedded stack's API Gateway
stand-in (:mod:`mediagen.local.gateway`).

A :class:`~http.server.ThreadingHTTPServer` that keeps its open connections, so that stopping it hangs up
kept-alive clients and their handler threads end instead of waiting out their idle timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar

OwnerT = TypeVar("OwnerT")


class LoopbackServer(ThreadingHTTPServer, Generic[OwnerT]):
    """Serves ``handler`` on ``address`` for ``owner`` (the handlers reach it as ``self.server.owner``).

    Use :meth:`serve_in_thread` to start and :meth:`stop` to end.

    Raises:
        OSError: the address cannot be bound.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: OwnerT) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    @property
    def port(self) -> int:
        """The bound port (the one the OS picked when asked for port 0)."""
        return int(self.server_address[1])

    def serve_in_thread(self, name: str) -> threading.Thread:
        """Start serving in a daemon thread called ``name`` and return it."""
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop accepting, close the listening socket and hang up every open connection (an unfinished
        answer ends short). Call once, from a thread other than the serving one."""
        host, port = str(self.server_address[0]), self.port
        closer = threading.Thread(target=self.shutdown, name=f"loopback-shutdown-{port}", daemon=True)
        closer.start()
        # Wake the accept loop now rather than at its next poll: connect once (never answered).
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            pass
        closer.join()
        self.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client hanging up mid-answer is not worth a traceback on stderr."""
