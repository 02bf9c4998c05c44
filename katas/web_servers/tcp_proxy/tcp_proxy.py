"""An L4 (TCP) load-balancing proxy on asyncio: round robin, full-duplex relay, half-close."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

# How much one read takes from a socket.
CHUNK = 65536  # 64 KiB


class TCPProxy:
    """Accepts TCP connections and pairs each with a connection to one backend, round robin.

    It relays bytes both ways without looking at them (it knows nothing of HTTP), passes a
    half-close (EOF) on to the other side, and skips backends that refuse the connection.

    >>> proxy = TCPProxy([("127.0.0.1", 8001), ("127.0.0.1", 8002)])
    >>> await proxy.start()            # doctest: +SKIP
    >>> host, port = proxy.address     # connect here; close() when done
    """

    def __init__(
        self,
        backends: Sequence[tuple[str, int]],
        host: str = "127.0.0.1",
        port: int = 0,
        connect_timeout: float = 2.0,
    ) -> None:
        if not backends:
            raise ValueError("TCPProxy needs at least one backend")
        self.backends = list(backends)
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self._server: asyncio.Server | None = None
        # TODO: the round-robin position, and a record of the live connections (their tasks)
        # so that close() can end them all.

    async def start(self) -> None:
        """Listen on (host, port); port 0 picks a free port, read it back from `address`."""
        # TODO: asyncio.start_server(self._serve_client, ...)
        raise NotImplementedError("TCPProxy.start")

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the proxy listens on, once started (RuntimeError before start())."""
        # TODO: from the listening socket (port 0 means the OS chose one).
        raise NotImplementedError("TCPProxy.address")

    async def close(self) -> None:
        """Stop accepting, close every live connection (both sides), leave no task running."""
        # TODO: close the server, then end every connection (one still connecting to a backend
        # too) and wait until they are all gone. Harmless before start() and a second time.
        raise NotImplementedError("TCPProxy.close")

    async def _connect_backend(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Open a connection to the next backend in turn, skipping any that refuse; None if all do."""
        # TODO: round robin, each backend at most once for this connection, starting from its turn;
        # a refused connect (OSError) or no answer within connect_timeout (asyncio.wait_for) means
        # try the next one. Move the turn past the backend used, so the live ones alternate.
        raise NotImplementedError("TCPProxy._connect_backend")

    async def _serve_client(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        """Relay one client connection to one backend until both directions are done."""
        # TODO: pick a backend (none: close the client), relay both directions at the same
        # time, and make sure both sockets are closed however this ends (done, error, close()).
        raise NotImplementedError("TCPProxy._serve_client")

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy reader -> writer until EOF, then pass the EOF on (half-close), not a close."""
        # TODO: read, write, wait for the writer's buffer to drain (both directions use this, so a
        # slow reader on either side slows the other); at EOF, write_eof().
        raise NotImplementedError("TCPProxy._pump")
