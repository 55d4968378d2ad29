"""A PostgreSQL that a test can take down and bring back: a loopback TCP port forwarding to the
real server (over TCP or its unix socket), with :meth:`PgProxy.down` closing the port and every
connection through it, :meth:`PgProxy.stall` accepting connections that never get an answer (a
server that hangs), and :meth:`PgProxy.up` forwarding again on the same port.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import quote

from python_jobs import db
from python_jobs.tests.redis_servers import free_port


class PgProxy:
    """Forwards ``127.0.0.1:port`` to the server of ``url``; :attr:`url` reaches it through here."""

    def __init__(self, url: str) -> None:
        self.params = db.connection_params(url)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self.stalled = False
        #: Connections accepted while stalled (each one waits for an answer that never comes).
        self.held = 0

    @property
    def url(self) -> str:
        user = quote(self.params["user"], safe="")
        password = quote(self.params["password"], safe="")
        auth = f"{user}:{password}@" if password else f"{user}@"
        return f"postgresql://{auth}127.0.0.1:{self.port}/{self.params['dbname']}"

    def _upstream(self) -> socket.socket:
        host, port = self.params["host"], int(self.params["port"])
        if host.startswith("/"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(f"{host}/.s.PGSQL.{port}")
            return sock
        return socket.create_connection((host, port))

    def up(self) -> None:
        self.stalled = False
        if self._listener is not None:
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Close the port and cut every connection through it (the server itself runs on)."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def stall(self) -> None:
        """Cut every connection; new ones are accepted and never answered."""
        self.down()
        self.up()
        self.stalled = True

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.stalled:
                with self._lock:
                    self._open.append(client)
                    self.held += 1
                continue
            try:
                server = self._upstream()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)
