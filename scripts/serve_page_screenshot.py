"""The screenshot of the page at `GET /` in docs/deploying.md: serve a model folder on a free
loopback port, type texts into the page in headless Chromium, click Classify, save the page.

    python scripts/serve_page_screenshot.py runs/minilm/model docs/images/serve-page.png

The browser is driven as in tests/test_serve_page.py (tests/chromium.py: the DevTools
protocol on a pipe, no extra package).
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

TEXTS = [
    "a gem of a film, funny and moving from start to finish",
    "a tedious mess that never finds its story",
    "the acting is fine but the plot goes nowhere",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a model folder saved by train")
    parser.add_argument("out", type=Path, help="where the PNG goes")
    parser.add_argument("--text", action="append", help="a text to type (repeatable)")
    args = parser.parse_args(argv)

    import uvicorn
    from chromium import Chromium, find_chromium

    from modernbert_tasks.serving import create_app, load_for_serving

    if find_chromium() is None:
        print("No Chromium on PATH: apt-get install chromium", file=sys.stderr)
        return 1
    app = create_app(load_for_serving(args.model, precision="fp32"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    texts = args.text or TEXTS
    try:
        with Chromium.start(width=820, height=640) as browser:
            browser.open(f"http://127.0.0.1:{sock.getsockname()[1]}/")
            browser.type_into("#t", "\n".join(texts))
            browser.click("button[type=submit]")
            browser.wait_for(f"document.querySelectorAll('.card').length === {len(texts)}")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_bytes(browser.screenshot())
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
