"""An L4 (TCP) load-balancing proxy on asyncio: round robin, full-duplex relay, half-close."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence


class Side(asyncio.Protocol):
    """One socket of a pair. Bytes it receives go straight to its peer's transport; when the
    peer's buffer is full (pause_writing), this side stops reading: that is the backpressure."""

    def __init__(self, pair: Pair) -> None:
        self.pair = pair
        self.transport: asyncio.Transport | None = None
        self.peer: Side | None = None
        self.eof = False  # this side sent us its EOF
        self.pending = bytearray()  # what arrived before the peer existed (client side only)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.peer is None or self.peer.transport is None:
            self.pending += data
            assert self.transport is not None
            self.transport.pause_reading()  # until a backend is there to take it
            return
        self.peer.transport.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        if self.peer is not None and self.peer.transport is not None:
            if not self.pending:
                self.peer.transport.write_eof()
            self.pair.maybe_done()
        return True  # keep the transport open: the other direction may still be flowing

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.eof:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.pair.lost(self, exc)


class Pair:
    """A client socket and its backend socket."""

    def __init__(self, proxy: TCPProxy) -> None:
        self.proxy = proxy
        self.client = Side(self)
        self.backend: Side | None = None
        self.closed = False

    def start_relay(self, backend: Side) -> None:
        self.backend = backend
        backend.peer, self.client.peer = self.client, backend
        # Either side may have spoken (even ended) before both were there: hand that over now.
        for side in (self.client, backend):
            assert side.peer is not None and side.peer.transport is not None and side.transport is not None
            if side.pending:
                side.peer.transport.write(bytes(side.pending))
                side.pending.clear()
            if side.eof:
                side.peer.transport.write_eof()
            else:
                side.transport.resume_reading()
        self.maybe_done()

    def maybe_done(self) -> None:
        if self.backend is not None and self.client.eof and self.backend.eof:
            self.close(graceful=True)

    def lost(self, side: Side, exc: Exception | None) -> None:
        # One socket is gone: if it went with an error, or before both EOFs, the pair is over.
        self.close(graceful=exc is None and side.eof)

    def close(self, graceful: bool) -> None:
        if self.closed:
            return
        self.closed = True
        self.proxy.pairs.discard(self)
        for side in (self.client, self.backend):
            if side is not None and side.transport is not None:
                if graceful:
                    side.transport.close()  # flushes what is buffered first
                else:
                    side.transport.abort()


class TCPProxy:
    """Accepts TCP connections and pairs each with a connection to one backend, round robin."""

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
        self.host, self.port, self.connect_timeout = host, port, connect_timeout
        self._server: asyncio.Server | None = None
        self._turn = 0
        self.pairs: set[Pair] = set()
        self._connecting: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accepted, self.host, self.port)

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("TCPProxy.start() has not been called")
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    def _accepted(self) -> Side:
        pair = Pair(self)
        self.pairs.add(pair)
        task = asyncio.get_running_loop().create_task(self._connect(pair))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)
        return pair.client

    async def _connect(self, pair: Pair) -> None:
        loop = asyncio.get_running_loop()
        count = len(self.backends)
        first = self._turn
        self._turn = (first + 1) % count
        try:
            for index in [(first + step) % count for step in range(count)]:
                host, port = self.backends[index]
                try:
                    _, side = await asyncio.wait_for(
                        loop.create_connection(lambda: Side(pair), host, port), self.connect_timeout
                    )
                except OSError:
                    continue
                self._turn = (index + 1) % count
                if pair.closed:  # the client left while we were connecting
                    assert side.transport is not None
                    side.transport.abort()
                    return
                pair.start_relay(side)
                return
            pair.close(graceful=False)  # nobody answered
        except asyncio.CancelledError:
            pair.close(graceful=False)
            raise

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._connecting):
            task.cancel()
        await asyncio.gather(*self._connecting, return_exceptions=True)
        for pair in list(self.pairs):
            pair.close(graceful=False)
        await asyncio.sleep(0)  # let the transports run their connection_lost callbacks
