"""An L4 (TCP) load-balancing proxy on asyncio: round robin, full-duplex relay, half-close."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

# How much one read takes from a socket. The relay never holds more than about this plus the
# writer's high-water mark per direction, however fast the sender and however slow the reader.
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
        # The index of the backend the next connection tries first.
        self._next = 0
        # One task per client connection, so close() can cancel and await every one of them.
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen on (host, port); port 0 picks a free port, read it back from `address`."""
        self._server = await asyncio.start_server(self._serve_client, self.host, self.port)

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the proxy listens on, once started (RuntimeError before start())."""
        if self._server is None:
            raise RuntimeError("TCPProxy.start() has not been called")
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def close(self) -> None:
        """Stop accepting, close every live connection (both sides), leave no task running."""
        if self._server is not None:
            # Stop listening first, so no new connection sneaks in while the others close.
            self._server.close()
            await self._server.wait_closed()
        # Cancelling a connection task ends its pumps and closes both of its sockets (in its
        # `finally`); awaiting them means nothing of ours is still running when close() returns.
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _connect_backend(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Open a connection to the next backend in turn, skipping any that refuse; None if all do."""
        count = len(self.backends)
        # This connection's own order: every backend once, from its turn on. The shared turn
        # moves on at once, so a connection arriving while this one waits on a slow backend
        # starts elsewhere (a pointer re-read between attempts could send it back to the same
        # silent backend twice and never to the live one).
        start = self._next
        self._next = (start + 1) % count
        for step in range(count):
            index = (start + step) % count
            host, port = self.backends[index]
            try:
                connection = await asyncio.wait_for(asyncio.open_connection(host, port), self.connect_timeout)
            except OSError:  # refused, unreachable, or TimeoutError (an OSError): try the next
                continue
            # The turn moves past every backend tried, so a refusing one doesn't hand its share
            # to its successor: the live ones keep alternating.
            self._next = (index + 1) % count
            return connection
        return None

    async def _serve_client(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        """Relay one client connection to one backend until both directions are done."""
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        backend_writer: asyncio.StreamWriter | None = None
        graceful = False
        try:
            backend = await self._connect_backend()
            if backend is not None:
                backend_reader, backend_writer = backend
                # Both directions at once: a client that writes while it reads (any pipelining
                # protocol, or just a big upload to an echo) deadlocks a proxy that finishes one
                # direction before starting the other. A TaskGroup also cancels the other
                # direction as soon as one fails, so an error on one side ends the pair.
                async with asyncio.TaskGroup() as pumps:
                    pumps.create_task(self._pump(client_reader, backend_writer))
                    pumps.create_task(self._pump(backend_reader, client_writer))
                graceful = True
            # else every backend refused: closing the client is all an L4 proxy can say.
        except* OSError:
            pass  # a peer reset or vanished; the finally below closes the other side too
        finally:
            self._connections.discard(task)
            for writer in (client_writer, backend_writer):
                if writer is None:
                    continue
                if graceful:
                    writer.close()  # flushes what is still buffered, then closes
                else:
                    # An error or close(): don't wait to flush to a peer that may never read.
                    writer.transport.abort()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy reader -> writer until EOF, then pass the EOF on (half-close), not a close."""
        while data := await reader.read(CHUNK):
            writer.write(data)
            # drain() waits while the writer's buffer is above its high-water mark: a slow
            # reader on the far side slows this loop, and so stops us reading from the sender.
            await writer.drain()
        # The sender is done sending, but may still be waiting for the answer (`nc -N`, a
        # request/response protocol that answers after EOF): shut only our write side.
        if writer.can_write_eof():
            writer.write_eof()
