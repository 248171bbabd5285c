"""The messages a real ComfyUI sends its frontend over the websocket (progress, the pack's own events), collected
for the integration tests, as the browser would receive them."""

from __future__ import annotations

import asyncio
import json
import threading
import time


class EventLog:
    """A websocket client of a ComfyServer (same client id as its /prompt calls), in a background thread; use as a
    context manager. `messages(kind)` are the JSON messages received so far ({"type", "data"}); binary preview
    frames are left out."""

    def __init__(self, server, connect_timeout: float = 30.0):
        self.url = server.url.replace("http://", "ws://", 1) + f"/ws?clientId={server.client_id}"
        self.connect_timeout = connect_timeout
        self._messages: list[dict] = []
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._listen()), daemon=True)

    async def _listen(self) -> None:
        import aiohttp

        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(self.url) as ws:
                self._connected.set()
                while not self._stop.is_set():
                    try:
                        msg = await ws.receive(timeout=0.2)
                    except asyncio.TimeoutError:
                        continue
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        with self._lock:
                            self._messages.append(json.loads(msg.data))
                    elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        break
        except BaseException as exc:  # noqa: BLE001 - reported by __enter__ / messages()
            self._error = exc
            self._connected.set()

    def __enter__(self) -> EventLog:
        self._thread.start()
        if not self._connected.wait(self.connect_timeout) or self._error is not None:
            raise RuntimeError(f"no websocket connection to {self.url}: {self._error!r}")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def messages(self, kind: str | None = None) -> list[dict]:
        if self._error is not None:
            raise RuntimeError(f"the websocket to {self.url} failed: {self._error!r}")
        with self._lock:
            return [m for m in self._messages if kind is None or m.get("type") == kind]

    def wait_for(self, predicate, timeout: float = 600.0, what: str = "a message") -> dict:
        """The first message for which predicate(message) is true, waiting for it up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((m for m in self.messages() if predicate(m)), None)
            if found is not None:
                return found
            time.sleep(0.1)
        raise TimeoutError(f"no {what} within {timeout:.0f} s; last messages: {self.messages()[-5:]}")
