"""Headless Chromium driven over the DevTools protocol on a pipe (no extra packages).

``--remote-debugging-pipe`` makes Chromium read NUL-terminated JSON commands on fd 3 and
write replies and events on fd 4: a few dozen lines of stdlib instead of a websocket
client or Playwright. ``load`` opens a page from disk and reports what a person would
see: each image's decoded width, every console error or uncaught exception, the load
time, and a full-page screenshot.

``chromium()`` finds Debian's ``chromium`` (installing it once with apt-get when running
as root) or returns why it cannot, for ``pytest.skip``.
"""

from __future__ import annotations

import base64
import json
import os
import selectors
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# One image as the page shows it: decoded size and source kind (data: or not).
IMAGES_JS = (
    "JSON.stringify(Array.from(document.images, i => "
    "({w: i.naturalWidth, h: i.naturalHeight, complete: i.complete, "
    "data: i.src.startsWith('data:'), alt: i.alt})))"
)


def find() -> str | None:
    for name in NAMES:
        if found := shutil.which(name):
            return found
    return None


def chromium(install_timeout: float = 300) -> tuple[str | None, str]:
    """(executable, "") or (None, why not). Installs Debian's package once if root."""
    if found := find():
        return found, ""
    apt = shutil.which("apt-get")
    if os.geteuid() != 0 or apt is None:
        return None, "chromium is not on PATH (install Debian's `chromium` package)"
    try:
        done = subprocess.run(
            [apt, "install", "-y", "--no-install-recommends", "chromium"],
            capture_output=True, text=True, timeout=install_timeout,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"apt-get install chromium failed: {exc}"
    if found := find():
        return found, ""
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    return None, f"apt-get install chromium failed ({done.returncode}): {tail[0]}"


@dataclass
class Page:
    """What loading one page gave."""

    images: list[dict[str, Any]]
    errors: list[str]  # console errors, uncaught exceptions, failed loads
    load_seconds: float  # navigation start to the load event
    total_seconds: float  # browser process start to the load event
    screenshot: bytes = b""  # PNG of the whole page
    probe: Any = None  # what the ``probe`` expression returned
    events: list[dict[str, Any]] = field(default_factory=list)


class _Pipe:
    """One DevTools connection: requests out on fd 3, replies and events back on fd 4."""

    def __init__(self, exe: str, profile: Path, timeout: float) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Chromium's ends must not sit on fds 3 or 4 themselves, or the shell's moves
        # below would clobber one with the other.
        to_chrome_r, from_chrome_w = (_above(fd, 5) for fd in (to_chrome_r, from_chrome_w))
        flags = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--mute-audio", "--hide-scrollbars",
            "--autoplay-policy=no-user-gesture-required",
            f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank",
        ]  # fmt: skip
        # bash (not dash: fds above 9) puts the pipe ends on the fds Chromium expects.
        fds = f"3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-"
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" {fds}', exe, *flags],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._buf = b""
        self._next = 0
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._from_chrome, selectors.EVENT_READ)

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next += 1
        msg: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        reply = self.wait(lambda m: m.get("id") == self._next)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def wait(self, want: Any) -> dict[str, Any]:
        """The first message ``want`` accepts; events read meanwhile are kept."""
        for n, msg in enumerate(self.events):
            if "id" not in msg and want(msg):
                return self.events.pop(n)
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                msg = json.loads(raw)
                if want(msg):
                    return dict(msg)
                if "id" not in msg:
                    self.events.append(msg)
            left = deadline - time.monotonic()
            if left <= 0 or not self._sel.select(left):
                raise TimeoutError(f"chromium did not answer within {self.timeout} s")
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium exited: {self.stderr_tail()}")
            self._buf += chunk

    def stderr_tail(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "still running"
        return self.proc.stderr.read().decode(errors="replace")[-2000:]

    def close(self) -> None:
        try:
            os.write(self._to_chrome, json.dumps({"id": 0, "method": "Browser.close"}).encode())
            os.write(self._to_chrome, b"\0")
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self._sel.close()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def _above(fd: int, low: int) -> int:
    """``fd`` moved to a number at least ``low`` (the original is closed)."""
    import fcntl

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low)
    os.close(fd)
    return moved


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            out.append("console: " + " ".join(str(a.get("value", a)) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            out.append("uncaught: " + str(details.get("exception", {}).get("description", details)))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            out.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
    return out


def load(
    exe: str, page: Path, *, screenshot: bool = True, width: int = 1280, timeout: float = 60,
    probe: str | None = None,
) -> Page:  # fmt: skip
    """Open ``page`` (a file) in a fresh headless Chromium and report on it. ``probe`` is a
    JavaScript expression (a promise is awaited) run after the load, as the test's own
    code: the page itself needs none."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mms-chromium-") as profile:
        pipe = _Pipe(exe, Path(profile), timeout)
        try:
            target = pipe.send("Target.createTarget", url="about:blank")["targetId"]
            session = pipe.send("Target.attachToTarget", targetId=target, flatten=True)
            sid = session["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                pipe.send(f"{domain}.enable", sid)
            pipe.send("Emulation.setDeviceMetricsOverride", sid, width=width, height=800,
                      deviceScaleFactor=1, mobile=False)  # fmt: skip
            navigated = time.monotonic()
            reply = pipe.send("Page.navigate", sid, url=page.resolve().as_uri())
            if reply.get("errorText"):
                raise RuntimeError(f"navigation failed: {reply['errorText']}")
            pipe.wait(lambda m: m.get("method") == "Page.loadEventFired")
            loaded = time.monotonic()
            value = pipe.send("Runtime.evaluate", sid, expression=IMAGES_JS, returnByValue=True)
            images = json.loads(value["result"]["value"])
            probed = None
            if probe is not None:
                reply = pipe.send("Runtime.evaluate", sid, expression=probe,
                                  awaitPromise=True, returnByValue=True)  # fmt: skip
                probed = reply["result"].get("value")
            png = b""
            if screenshot:
                size = pipe.send("Page.getLayoutMetrics", sid)["cssContentSize"]
                clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                        "scale": 1}  # fmt: skip
                shot = pipe.send("Page.captureScreenshot", sid, format="png", clip=clip,
                                 captureBeyondViewport=True)  # fmt: skip
                png = base64.b64decode(shot["data"])
            pipe.send("Runtime.evaluate", sid, expression="0")  # flush late console events
            events = list(pipe.events)
        finally:
            pipe.close()
    return Page(
        images=images, errors=_errors(events), load_seconds=loaded - navigated,
        total_seconds=loaded - started, screenshot=png, probe=probed, events=events,
    )  # fmt: skip
