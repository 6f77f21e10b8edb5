"""A small client of headless Chromium over the DevTools protocol, on a pipe
(``--remote-debugging-pipe``: no port, no websocket library, nothing listening).

Used by the site's tests and benchmark (pages load without console errors, no request
leaves localhost, charts render and move while a run trains) and by the report export
(``Page.printToPDF``). Debian's ``chromium`` package; nothing is downloaded.

    with Chromium() as browser:
        page = browser.new_page()
        page.goto("http://127.0.0.1:8000/training.html")
        page.wait_for("document.body.dataset.hlReady === '1'")
        page.screenshot(Path("training.png"))
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpclab.errors import SiteError

BINARIES = ("chromium", "chromium-browser", "google-chrome", "chrome")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-pipe",
)


def find_chromium() -> str | None:
    """Path of a Chromium binary ($HPCLAB_CHROMIUM, else the first on PATH), or None."""
    env = os.environ.get("HPCLAB_CHROMIUM")
    if env:
        return env if shutil.which(env) else None
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """One headless browser process; pages are tabs of it."""

    def __init__(self, binary: str | None = None, *, timeout: float = 30.0) -> None:
        self.binary = binary or find_chromium()
        if not self.binary:
            raise SiteError(
                "Chromium not found: install Debian's chromium (apt-get install chromium)"
            )
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="hpclab-chromium-")
        self._next_id = 0
        self._lock = threading.Lock()
        self._waiters: dict[int, tuple[threading.Event, list[Any]]] = {}
        self._listeners: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        cmd_r, self._cmd_w = os.pipe()
        self._resp_r, resp_w = os.pipe()

        def child_fds() -> None:  # Chromium reads commands on fd 3 and answers on fd 4
            os.dup2(cmd_r, 3)
            os.dup2(resp_w, 4)

        self.proc = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child_fds,
            pass_fds=(3, 4),
        )
        os.close(cmd_r)
        os.close(resp_w)
        self._reader = threading.Thread(target=self._read, name="chromium-cdp", daemon=True)
        self._reader.start()
        self.send("Target.setDiscoverTargets", {"discover": True})

    # -- protocol ------------------------------------------------------------------------
    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one command and wait for its result (SiteError on a protocol error)."""
        with self._lock:
            self._next_id += 1
            msg_id = self._next_id
            done = threading.Event()
            self._waiters[msg_id] = (done, [])
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        if not done.wait(timeout or self.timeout):
            self._waiters.pop(msg_id, None)
            raise SiteError(f"Chromium did not answer {method} within {timeout or self.timeout} s")
        reply = self._waiters.pop(msg_id)[1][0]
        if "error" in reply:
            raise SiteError(f"Chromium: {method}: {reply['error'].get('message')}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def on(self, event: str, callback: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.setdefault(event, []).append(callback)

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._resp_r, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                if "id" in msg:
                    waiter = self._waiters.get(msg["id"])
                    if waiter:
                        waiter[1].append(msg)
                        waiter[0].set()
                    continue
                for cb in list(self._listeners.get(msg.get("method", ""), [])):
                    cb(msg)
        for done, _ in list(self._waiters.values()):
            done.set()

    # -- pages ---------------------------------------------------------------------------
    def new_page(self, *, width: int = 1360, height: int = 900, dark: bool = False) -> Page:
        """A tab in a browser context of its own (``dark``: prefers-color-scheme: dark).

        Its own context, because pages would otherwise share localStorage, where
        mkdocs-material keeps the palette it picked: a first light page would make every
        later page on the same origin light, whatever colour scheme it asks for.
        """
        context = self.send("Target.createBrowserContext", {"disposeOnDetach": True})[
            "browserContextId"
        ]
        target = self.send(
            "Target.createTarget", {"url": "about:blank", "browserContextId": context}
        )["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        return Page(self, target, session, context, width=width, height=height, dark=dark)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close", timeout=5)
                except SiteError:
                    pass
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        finally:
            for fd in (self._cmd_w, self._resp_r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Page:
    """One tab: navigation, evaluation, screenshots, and what it logged and requested."""

    def __init__(
        self,
        browser: Chromium,
        target: str,
        session: str,
        context: str,
        *,
        width: int,
        height: int,
        dark: bool,
    ) -> None:
        self.browser = browser
        self.target = target
        self.session = session
        self.context = context
        self.errors: list[str] = []  # console errors, uncaught exceptions, failed loads
        self.warnings: list[str] = []  # console warnings (Vega's "Infinite extent", ...)
        self.requests: list[str] = []  # every URL the page asked for
        self._loaded = threading.Event()

        def mine(cb: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
            return lambda msg: cb(msg["params"]) if msg.get("sessionId") == session else None

        browser.on("Runtime.consoleAPICalled", mine(self._console))
        browser.on("Runtime.exceptionThrown", mine(self._exception))
        browser.on("Log.entryAdded", mine(self._log))
        browser.on(
            "Network.requestWillBeSent", mine(lambda p: self.requests.append(p["request"]["url"]))
        )
        browser.on("Page.loadEventFired", mine(lambda p: self._loaded.set()))
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        scheme = "dark" if dark else "light"
        self.send(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )

    def send(self, method: str, params: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        return self.browser.send(method, params, session=self.session, **kw)

    def _console(self, p: dict[str, Any]) -> None:
        if p.get("type") == "warning":
            self.warnings.append(
                " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            )
        if p.get("type") in ("error", "assert"):
            args = " ".join(
                str(a.get("value", a.get("description", ""))) for a in p.get("args", [])
            )
            self.errors.append(f"console.{p['type']}: {args}")

    def _exception(self, p: dict[str, Any]) -> None:
        d = p.get("exceptionDetails", {})
        desc = d.get("exception", {}).get("description") or d.get("text")
        self.errors.append(f"exception: {desc}")

    def _log(self, p: dict[str, Any]) -> None:
        entry = p.get("entry", {})
        if entry.get("level") == "error":
            self.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())

    def goto(self, url: str, *, timeout: float = 30.0) -> None:
        """Navigate and wait for the load event."""
        self._loaded.clear()
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise SiteError(f"Chromium could not open {url}: {result['errorText']}")
        if not self._loaded.wait(timeout):
            raise SiteError(f"{url} did not load within {timeout} s")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        r = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in r:
            raise SiteError(f"JavaScript failed: {r['exceptionDetails'].get('text')}: {expression}")
        return r.get("result", {}).get("value")

    def wait_for(self, expression: str, *, timeout: float = 15.0, interval: float = 0.05) -> Any:
        """Poll until the expression is truthy; its value, or SiteError at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise SiteError(f"timed out after {timeout} s waiting for: {expression}")
            time.sleep(interval)

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self.send("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params["captureBeyondViewport"] = True
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": min(size["height"], 4000),
                "scale": 1,
            }
        data = self.send("Page.captureScreenshot", params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def pdf(self, path: Path) -> Path:
        data = self.send(
            "Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True}, timeout=60
        )["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})
        self.browser.send("Target.disposeBrowserContext", {"browserContextId": self.context})
