"""A raw wslink client over a real socket (aiohttp), for what a browser would never send on its own:
a foreign Origin, trame's public default secret, a chunk header claiming a gigabyte."""

from __future__ import annotations

import asyncio
import itertools
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import msgpack
from wslink.chunking import UnChunker, generate_chunks

PUBLIC_DEFAULT_SECRET = "wslink-secret"  # what trame and wslink use unless told otherwise


class RawWslinkClient:
    def __init__(self, session: aiohttp.ClientSession, ws) -> None:
        self._session = session
        self.ws = ws
        self._ids = itertools.count(1)
        self._unchunker = UnChunker()
        self._unchunker.set_max_message_size(2**31)

    @classmethod
    async def connect(cls, url: str, **headers: str) -> RawWslinkClient:
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(url, headers=headers)
        except BaseException:
            await session.close()
            raise
        return cls(session, ws)

    async def close(self) -> None:
        await self.ws.close()
        await self._session.close()

    async def send_raw(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def call(self, method: str, args: list, system: bool = False, timeout_s: float = 30) -> dict:
        """Send one call and return the reply carrying its id (``result`` or ``error``)."""
        call_id = f"{'system' if system else 'rpc'}:c0:{next(self._ids)}"
        message = msgpack.packb(
            {"wslink": "1.0", "id": call_id, "method": method, "args": args, "kwargs": {}}
        )
        for chunk in generate_chunks(message, 4 * 2**20):
            await self.ws.send_bytes(chunk)
        async with asyncio.timeout(timeout_s):
            while True:
                frame = await self.ws.receive()
                if frame.type != aiohttp.WSMsgType.BINARY:
                    return {"closed": frame.type.name, "close_code": self.ws.close_code}
                reply = self._unchunker.process_chunk(frame.data)
                if reply is not None and reply.get("id") == call_id:
                    return reply

    async def hello(self, secret: str) -> dict:
        return await self.call("wslink.hello", [{"secret": secret}], system=True)


def run_async(coroutine):
    """Run a coroutine to completion in a thread of its own: Playwright's sync API holds the main thread's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
