"""Headless Chromium driven over the DevTools protocol, for tests of the HTML pages.

Debian's ``chromium`` package (``.ci/run`` installs it) is started with
``--remote-debugging-port=0``; the port it picked is read from the
``DevToolsActivePort`` file in its fresh ``--user-data-dir``, and one page target
is driven over a websocket (``websocket-client``, pinned in requirements.txt).
Nothing is downloaded and no browser build of its own is installed.

Example::

    with Chromium() as browser:
        page = browser.open(Path("runs/index.html"), width_px=1280)
        page.errors          # console errors, uncaught exceptions, failed loads
        page.evaluate("document.title")
        page.screenshot(Path("index.png"))
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, List, Optional

#: Launch flags that work as root on a machine without a GPU or network.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--mute-audio", "--remote-allow-origins=*", "--remote-debugging-port=0")


def find_chromium() -> Optional[str]:
    """Path of a Chromium (or Chrome) executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


class ChromiumError(RuntimeError):
    """The browser did not start, or a DevTools command failed."""


class Page:
    """One tab. ``errors`` collects console errors, uncaught exceptions and failed loads."""

    def __init__(self, ws_url: str, timeout_s: float) -> None:
        import websocket  # websocket-client

        self.timeout_s = timeout_s
        self._ws = websocket.create_connection(ws_url, timeout=timeout_s, suppress_origin=True)
        self._id = 0
        self.errors: List[str] = []
        self.events: List[Dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def close(self) -> None:
        self._ws.close()

    def _on_event(self, msg: Dict[str, Any]) -> None:
        self.events.append(msg)
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            self.errors.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            e = params["entry"]
            self.errors.append(f"log {e.get('source')}: {e.get('text')} {e.get('url', '')}".strip())
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            self.errors.append(f"load failed: {params.get('errorText')} ({params.get('type')})")

    def _recv(self) -> Dict[str, Any]:
        msg = json.loads(self._ws.recv())
        if "method" in msg:
            self._on_event(msg)
        return msg

    def send(self, method: str, **params: Any) -> Dict[str, Any]:
        """Run one DevTools command; returns its ``result``. Events that arrive meanwhile are kept."""
        self._id += 1
        mine = self._id
        self._ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            msg = self._recv()
            if msg.get("id") == mine:
                if "error" in msg:
                    raise ChromiumError(f"{method}: {msg['error']}")
                return msg.get("result", {})
        raise ChromiumError(f"{method}: no answer in {self.timeout_s:g} s")

    def wait_event(self, method: str) -> Dict[str, Any]:
        """Wait for the next event ``method`` (one already received counts)."""
        for k, msg in enumerate(self.events):
            if msg.get("method") == method:
                del self.events[k]
                return msg
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            msg = self._recv()
            if msg.get("method") == method:
                self.events.remove(msg)
                return msg
        raise ChromiumError(f"no {method} in {self.timeout_s:g} s")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (a Promise is awaited)."""
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise ChromiumError(f"{expression[:60]}...: {res['exceptionDetails']}")
        return res.get("result", {}).get("value")

    def resize(self, width_px: int, height_px: int = 900) -> None:
        """Lay the page out at this viewport size; a width under 600 px emulates a phone."""
        self.send("Emulation.setDeviceMetricsOverride", width=width_px, height=height_px, deviceScaleFactor=1,
                  mobile=width_px < 600)

    def goto(self, url: str) -> None:
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]
        self.send("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        """A PNG of the page (the whole page when ``full_page``), at the current width."""
        params: Dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self.send("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        data = self.send("Page.captureScreenshot", **params)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)


class Chromium:
    """A headless Chromium for the length of a ``with`` block.

    Args:
        exe: the executable (default :func:`find_chromium`).
        timeout_s: [s] for the start and for each command.
    """

    def __init__(self, exe: Optional[str] = None, timeout_s: float = 60.0) -> None:
        self.exe = exe or find_chromium()
        if self.exe is None:
            raise ChromiumError("no chromium executable (apt-get install chromium)")
        self.timeout_s = timeout_s
        self._dir = tempfile.TemporaryDirectory(prefix="chromium-")
        self._proc: Optional[subprocess.Popen] = None
        self.port = 0
        self._pages: List[Page] = []

    def __enter__(self) -> "Chromium":
        profile = Path(self._dir.name)
        self._log = open(profile.parent / f"{profile.name}.log", "wb")
        self._proc = subprocess.Popen([self.exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                      stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)  # its own group: its children go with it
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:  # the browser writes the file once it listens
            if self._proc.poll() is not None:
                raise ChromiumError(f"chromium exited with {self._proc.returncode}: {self._tail()}")
            text = port_file.read_text() if port_file.is_file() else ""
            if "\n" in text:
                self.port = int(text.split("\n", 1)[0])
                return self
            time.sleep(0.05)
        self.__exit__(None, None, None)
        raise ChromiumError(f"chromium did not open its DevTools port in {self.timeout_s:g} s: {self._tail()}")

    def _tail(self) -> str:
        self._log.flush()
        return Path(self._log.name).read_bytes()[-2000:].decode(errors="replace")

    def open(self, path_or_url: str | os.PathLike, width_px: int = 1280, height_px: int = 900) -> Page:
        """A new tab at ``width_px`` x ``height_px`` with the page loaded (the load event fired)."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            target = json.loads(resp.read())
        page = Page(target["webSocketDebuggerUrl"], self.timeout_s)
        self._pages.append(page)
        page.resize(width_px, height_px)
        url = str(path_or_url)
        page.goto(url if "://" in url else Path(url).resolve().as_uri())
        return page

    def __exit__(self, *exc: Any) -> None:
        for page in self._pages:
            try:
                page.close()
            except Exception:  # the browser may be gone already
                pass
        if self._proc is not None:
            self._stop_group()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)
        # A renderer or utility process can still be writing the profile for a moment after the
        # browser exits (CI once saw "Directory not empty: 'Default'"): retry the removal briefly.
        for attempt in range(20):
            try:
                self._dir.cleanup()
                break
            except OSError:
                if attempt == 19:
                    raise
                time.sleep(0.1)

    def _stop_group(self) -> None:
        """Terminate the browser and every process it started, and wait until all are gone."""
        pgid = self._proc.pid
        for sig, grace_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline:
                self._proc.poll()  # reap the leader
                if not _live_in_group(pgid):
                    return
                time.sleep(0.05)
        self._proc.wait()


def _live_in_group(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies, left for init to reap, do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel, zombies included
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # gone while we looked
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields after the name: state, ppid, pgrp
            return True
    return False
