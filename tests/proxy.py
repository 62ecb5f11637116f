"""A TCP proxy that takes a server away from its clients, for fault tests."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time


class Cuttable:
    """A TCP proxy to a server (PostgreSQL, the object store) that can cut every connection and
    refuse new ones for a while: the server as its clients see it when it goes away."""

    def __init__(self, target: tuple[str, int] | str):
        self.target, self.open = target, True  # (host, port), or the path of a Unix socket
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.pairs: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        # Nothing may end this loop: were it to stop, the listener would still complete TCP
        # handshakes that nobody serves, and the server would look hung for good, not away.
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError as error:
                print(f"proxy to {self.target}: accept failed: {error}", file=sys.stderr, flush=True)
                time.sleep(0.1)
                continue
            if not self.open:
                client.close()
                continue
            try:
                upstream = self._connect()
            except OSError as error:  # the server itself is down: its clients see a closed connection
                print(f"proxy to {self.target}: {error}", file=sys.stderr, flush=True)
                client.close()
                continue
            with self.lock:
                if not self.open:  # cut while this one was connecting
                    _end(client)
                    _end(upstream)
                    continue
                self.pairs += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _connect(self) -> socket.socket:
        if isinstance(self.target, str):
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.target)
            except OSError:
                upstream.close()
                raise
            return upstream
        upstream = socket.create_connection(self.target, timeout=10)
        upstream.settimeout(None)  # the timeout was for connecting; the pipes block
        return upstream

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _end(source)
            _end(sink)

    def cut(self) -> None:
        self.open = False
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for end in pairs:
            _end(end)


def _end(end: socket.socket) -> None:
    """Shut down, then close: the peer sees the connection end, and the pipe thread blocked in
    recv on this socket wakes. (A bare close while another thread is in recv releases nothing: the
    server would keep the session, its open transaction and its locks, for good.)"""
    with contextlib.suppress(OSError):
        end.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        end.close()
