"""An L4 (TCP) load-balancing proxy on asyncio: round robin, full-duplex relay, half-close."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Sequence

CHUNK = 65536


class TCPProxy:
    """Non-blocking sockets driven by the loop's sock_* coroutines: sock_sendall() returns only
    once the kernel took every byte, so a slow reader slows the relay by construction."""

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
        self._listener: socket.socket | None = None
        self._acceptor: asyncio.Task[None] | None = None
        self._turn = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        family = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0][0]  # IPv4 or IPv6
        listener = socket.create_server((self.host, self.port), family=family)
        listener.setblocking(False)
        self._listener = listener
        self._acceptor = asyncio.get_running_loop().create_task(self._accept_forever(listener))

    @property
    def address(self) -> tuple[str, int]:
        if self._listener is None:
            raise RuntimeError("TCPProxy.start() has not been called")
        host, port = self._listener.getsockname()[:2]
        return host, port

    async def _accept_forever(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            client, _ = await loop.sock_accept(listener)
            client.setblocking(False)
            task = loop.create_task(self._serve(client))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _connect(self) -> socket.socket | None:
        loop = asyncio.get_running_loop()
        order = [self.backends[(self._turn + i) % len(self.backends)] for i in range(len(self.backends))]
        self._turn = (self._turn + 1) % len(self.backends)
        for address in order:
            backend = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET, socket.SOCK_STREAM)
            backend.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(backend, address), self.connect_timeout)
            except (OSError, asyncio.CancelledError) as exc:
                backend.close()
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            self._turn = (self.backends.index(address) + 1) % len(self.backends)
            return backend
        return None

    async def _serve(self, client: socket.socket) -> None:
        backend: socket.socket | None = None
        clean = False
        try:
            backend = await self._connect()
            if backend is not None:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._copy(client, backend))
                    group.create_task(self._copy(backend, client))
                clean = True
        except* OSError:
            pass
        finally:
            for sock in (client, backend):
                if sock is None:
                    continue
                if not clean:  # an error or a cancel: RST, don't linger
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.close()  # sock_sendall returned, so everything written is in the kernel already

    @staticmethod
    async def _copy(source: socket.socket, target: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while data := await loop.sock_recv(source, CHUNK):
            await loop.sock_sendall(target, data)
        target.shutdown(socket.SHUT_WR)  # pass the EOF on; the other direction goes on

    async def close(self) -> None:
        if self._acceptor is not None:
            self._acceptor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._acceptor
            self._acceptor = None
        if self._listener is not None:
            self._listener.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
