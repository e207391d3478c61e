"""Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`):
no websocket library, no Selenium, no Playwright. Just what the page test needs: open a URL,
type, click, read the page, take a screenshot.

    with Chromium.start(width=900, height=700) as browser:
        browser.open("http://127.0.0.1:8080/")
        browser.type_into("#t", "a gem of a film")
        browser.click("button")
        browser.wait_for("document.querySelectorAll('.card').length == 1")
        png = browser.screenshot()
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

__all__ = ["Chromium", "find_chromium"]

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable on PATH, or None."""
    return next((found for name in NAMES if (found := shutil.which(name))), None)


def _above(fd: int, low: int) -> int:
    import fcntl

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, low)
    os.close(fd)
    return moved


class Chromium:
    def __init__(self, proc: subprocess.Popen, to_browser: int, from_browser: int, profile: str) -> None:
        self.proc, self._out, self._in, self._profile = proc, to_browser, from_browser, profile
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None
        self.events: list[dict] = []

    @classmethod
    def start(cls, width: int = 900, height: int = 700, executable: str | None = None) -> Chromium:
        executable = executable or find_chromium()
        if executable is None:
            raise RuntimeError("no Chromium on PATH (apt-get install chromium)")
        profile = tempfile.mkdtemp(prefix="chromium-profile-")
        # the browser reads commands on fd 3 and writes answers on fd 4
        command_r, command_w = os.pipe()
        answer_r, answer_w = os.pipe()
        # the child's ends above fd 4, so that moving them to 3 and 4 closes nothing needed
        command_r, answer_w = (_above(fd, 10) for fd in (command_r, answer_w))
        flags = [
            "--headless=new",
            "--remote-debugging-pipe",
            "--no-sandbox",  # tests run as root in containers
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        script = f'exec "$0" "$@" 3<&{command_r} 4>&{answer_w} {command_r}<&- {answer_w}>&-'
        proc = subprocess.Popen(
            [shutil.which("bash") or "bash", "-c", script, executable, *flags],  # dash: no fd > 9
            pass_fds=(command_r, answer_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(command_r)
        os.close(answer_w)
        browser = cls(proc, command_w, answer_r, profile)
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        browser.session = attached["sessionId"]
        browser.call("Page.enable")
        browser.call("Runtime.enable")
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        return browser

    # --- the protocol -------------------------------------------------------------------------
    def call(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def _read(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    # --- what a person does -------------------------------------------------------------------
    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, timeout: float = 30) -> None:
        self.events.clear()
        self.call("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete'", timeout)

    def wait_for(self, expression: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(f"Boolean({expression})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {expression}")
            time.sleep(0.05)

    def click(self, selector: str) -> None:
        """A real mouse click (press and release) in the middle of the element."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
            )

    def type_into(self, selector: str, text: str) -> None:
        """Click the field, then type `text` key by key (Enter for a new line)."""
        self.click(selector)
        for char in text:
            if char == "\n":
                for kind in ("keyDown", "keyUp"):
                    self.call(
                        "Input.dispatchKeyEvent",
                        {
                            "type": kind,
                            "key": "Enter",
                            "code": "Enter",
                            "windowsVirtualKeyCode": 13,
                            "text": "\r",
                        },
                    )
            else:
                self.call("Input.dispatchKeyEvent", {"type": "keyDown", "text": char, "key": char})
                self.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": char})

    def screenshot(self) -> bytes:
        """The whole page as PNG bytes."""
        height = self.evaluate("document.documentElement.scrollHeight")
        width = self.evaluate("document.documentElement.clientWidth")
        shot = self.call(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            },
        )
        return base64.b64decode(shot["data"])

    # --- the end --------------------------------------------------------------------------------
    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for fd in (self._out, self._in):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
