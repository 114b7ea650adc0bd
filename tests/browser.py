"""A headless Chromium driven over the DevTools protocol, for the status page.

The page's tests and its benchmark need a real browser: the grid is a canvas drawn by the
page's script, which no HTML parser runs. Chromium comes from Debian (``apt-get install
chromium``); playwright's and selenium's drivers would need a download this machine cannot
make. The protocol is JSON over one WebSocket (aiohttp's client), and these few commands
are all the page needs: navigate, evaluate, screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

#: Names Chromium is installed under (Debian's first).
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The path of an installed Chromium, or None."""
    return next((p for name in CANDIDATES if (p := shutil.which(name))), None)


class BrowserError(RuntimeError):
    """The browser failed to start, or a command or script failed in it."""


class Page:
    """One tab, through its DevTools WebSocket."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Run one protocol command and return its result (events are skipped)."""
        ident = next(self._ids)
        await self._socket.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = await self._socket.receive(timeout=120)
            if message.type is not aiohttp.WSMsgType.TEXT:
                raise BrowserError(f"DevTools connection ended: {message.type.name}")
            data = json.loads(message.data)
            if data.get("id") != ident:
                continue
            if "error" in data:
                raise BrowserError(f"{method}: {data['error']}")
            result: dict[str, Any] = data.get("result", {})
            return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression!r} raised: {text}")
        return result["result"].get("value")

    async def navigate(self, url: str, timeout: float = 60.0) -> None:
        """Open ``url`` and wait until its document has loaded."""
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'", timeout, what=f"{url} loaded")

    async def wait_for(self, expression: str, timeout: float = 60.0, *, what: str = "") -> Any:
        """Evaluate ``expression`` until it is truthy (its value), or fail after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if loop.time() > deadline:
                raise AssertionError(f"not in {timeout:.0f}s: {what or expression}")
            await asyncio.sleep(0.05)

    async def screenshot(self, path: Path) -> None:
        """A PNG of the whole page (beyond the viewport), written to ``path``."""
        metrics = await self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = await self.send(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


async def _devtools_port(profile: Path, process: asyncio.subprocess.Process, log: Path) -> int:
    """The port Chromium listens on: the first line of ``DevToolsActivePort``."""
    marker = profile / "DevToolsActivePort"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while not marker.exists() or not marker.read_text().strip():
        if process.returncode is not None or loop.time() > deadline:
            raise BrowserError(f"Chromium did not start:\n{log.read_text()[-2000:]}")
        await asyncio.sleep(0.05)
    return int(marker.read_text().splitlines()[0])


@contextlib.asynccontextmanager
async def chromium(width: int = 1400, height: int = 900) -> AsyncIterator[Page]:
    """A headless Chromium with one blank tab of ``width`` × ``height``; stopped after."""
    binary = find_chromium()
    if binary is None:
        raise BrowserError("no Chromium installed (apt-get install chromium)")
    # (cleanup errors ignored: a renderer may still be writing its profile as it ends)
    with tempfile.TemporaryDirectory(
        prefix="simfleet-chromium-", ignore_cleanup_errors=True
    ) as scratch:
        profile = Path(scratch) / "profile"
        log = Path(scratch) / "chromium.log"
        arguments = [
            "--headless=new",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-dev-shm-usage",  # a container's /dev/shm is small
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ]
        if os.geteuid() == 0:
            arguments.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
        with log.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                binary,
                *arguments,
                "about:blank",
                stdout=sink,
                stderr=sink,
                start_new_session=True,  # its renderers too end with its process group
            )
        try:
            port = await _devtools_port(profile, process, log)
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = await response.json()
                url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
                async with session.ws_connect(url, max_msg_size=0) as socket:
                    page = Page(socket)
                    await page.send("Page.enable")
                    await page.send("Runtime.enable")
                    yield page
        finally:
            await _stop(process)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """End Chromium and every process of its group (the group this module started)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), 15)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
