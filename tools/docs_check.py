"""Build the site and read every page in a real browser, as a reader would see it.

    python3 tools/docs_check.py [--mkdocs PATH] [--screenshots DIR]

Builds with `mkdocs build --strict`, serves the site on loopback, and loads
each page in headless Chromium (Debian's /usr/bin/chromium), driven through
the DevTools protocol over a WebSocket written here with the standard
library. A page fails when:

- a diagram is not drawn: a mermaid block left as text, or drawn as
  mermaid's error diagram, or so wide that it is shrunk to unreadable text;
- the browser logs an error: a script exception, a failed request, an error
  on the console;
- an internal link leads nowhere: a page or file the site does not serve,
  or an `#anchor` that the target page does not have;
- a snippet is missing: an empty code block (the strict build already
  fails on a snippet file or section that does not exist).

It writes a screenshot of every page (the whole page, as PNG) to the
screenshots folder, for a reviewer to look at. Exit status 1 if a page failed.
"""

import argparse
import base64
import html.parser
import http.server
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MKDOCS = os.path.join(os.environ.get("DOCS_VENV", "/tmp/dockyard-docs-venv"), "bin", "mkdocs")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DIAGRAM_WAIT_S = 60      # mermaid on a busy 2-core machine is slow, not broken
LOAD_WAIT_S = 60
MIN_DIAGRAM_SCALE = 0.7  # mermaid's 16px text drawn below about 11px is hard to read


# --- a WebSocket client, just enough for the DevTools protocol (RFC 6455) --------------------

class WebSocket:
    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=LOAD_WAIT_S)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the browser closed the connection during the handshake")
            response += chunk
        if not response.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"no WebSocket upgrade: {response.splitlines()[0]!r}")
        self.buffer = response.split(b"\r\n\r\n", 1)[1]

    def send(self, text: str) -> None:
        """One masked text frame, as a client must send."""
        payload = text.encode()
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        elif len(payload) < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", len(payload))
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def receive(self) -> str:
        """The next whole text message (fragments joined, pings answered)."""
        message = b""
        while True:
            first, second = self.read(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self.read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self.read(8))[0]
            payload = self.read(length)  # a server never masks
            opcode = first & 0x0F
            if opcode == 0x9:
                self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("the browser closed the DevTools connection")
            message += payload
            if first & 0x80:
                return message.decode()

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buffer)))
            if not chunk:
                raise ConnectionError("the browser went away")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data


class DevTools:
    """Commands to one page target, and the events it sends meanwhile."""

    def __init__(self, url: str) -> None:
        self.ws, self.next_id, self.events = WebSocket(url), 0, []

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.receive())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            if "method" in message:
                self.events.append(message)

    def wait_for(self, event: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e["method"] == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {timeout}s")
            self.ws.sock.settimeout(max(0.1, deadline - time.monotonic()))
            self.events.append(json.loads(self.ws.receive()))
            self.ws.sock.settimeout(LOAD_WAIT_S)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")


# --- the site --------------------------------------------------------------------------------

def build_site(mkdocs: str, target: str) -> None:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([mkdocs, "build", "--strict", "--quiet", "--site-dir", target], cwd=ROOT,
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"error: mkdocs build --strict failed:\n{result.stdout}{result.stderr}")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve(site: str) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = lambda *args: QuietHandler(*args, directory=site)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def pages(site: str) -> list[str]:
    """Every page of the site, as a path under it ('' is the home page)."""
    found = []
    for directory, _, files in os.walk(site):
        if "index.html" in files and not os.path.relpath(directory, site).startswith(("assets", "search")):
            relative = os.path.relpath(directory, site)
            found.append("" if relative == "." else relative + "/")
    return sorted(found)


class Ids(html.parser.HTMLParser):
    """The ids of one HTML page: what `#anchor` links may name."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        self.ids.update(value for name, value in attrs if name in ("id", "name") and value)


def ids_of(url: str, cache: dict[str, set[str] | None]) -> set[str] | None:
    """The ids of the page at `url`, None if the site does not serve it."""
    if url not in cache:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                parser = Ids()
                if "html" in response.headers.get("Content-Type", ""):
                    parser.feed(response.read().decode(errors="replace"))
                cache[url] = parser.ids
        except urllib.error.HTTPError:
            cache[url] = None
    return cache[url]


# --- one page in the browser ----------------------------------------------------------------------

DIAGRAM_STATE = """(() => ({
  expected: document.querySelectorAll('.mermaid').length,
  drawn: document.querySelectorAll('div.mermaid').length,
  left: [...document.querySelectorAll('pre.mermaid')].map(p => p.textContent.trim().split('\\n')[0]),
}))()"""

PAGE_FACTS = """(() => ({
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  empty: [...document.querySelectorAll('pre > code')].filter(c => !c.textContent.trim()).length,
  height: Math.ceil(document.documentElement.scrollHeight),
}))()"""


def check_page(tools: DevTools, base: str, page: str, shots: str, ids_cache: dict) -> list[str]:
    """Load one page; return what is wrong with it."""
    url = f"{base}/{page}"
    tools.events.clear()
    tools.call("Page.navigate", url=url)
    tools.wait_for("Page.loadEventFired", LOAD_WAIT_S)
    problems = diagram_problems(tools)
    facts = tools.evaluate(PAGE_FACTS)
    problems += browser_errors(tools.events)
    problems += link_problems(facts["links"], base, ids_cache)
    if facts["empty"]:
        problems.append(f"{facts['empty']} empty code block(s): a snippet that was not found?")
    screenshot(tools, facts["height"], os.path.join(shots, (page.strip("/").replace("/", "_") or "index") + ".png"))
    return problems


def diagram_problems(tools: DevTools) -> list[str]:
    """Wait for mermaid to draw every diagram; a diagram it cannot draw stays text."""
    deadline = time.monotonic() + DIAGRAM_WAIT_S
    while True:
        state = tools.evaluate(DIAGRAM_STATE)
        if state["drawn"] == state["expected"] or time.monotonic() > deadline:
            break
        if any(e["method"] == "Runtime.exceptionThrown" for e in tools.events):
            break  # a diagram that failed to parse throws: waiting longer changes nothing
        time.sleep(0.2)
    problems = [f"diagram not drawn (still text): {first!r}" for first in state["left"]]
    for node, attributes in diagrams(tools):
        if attributes.get("aria-roledescription") == "error":
            problems.append(f"diagram drawn as mermaid's error diagram: {attributes.get('id')!r}")
        elif (scale := drawn_scale(tools, node, attributes)) < MIN_DIAGRAM_SCALE:
            problems.append(f"diagram {attributes.get('aria-roledescription')} shrunk to {scale:.0%} "
                            "of its size to fit the page: its text is too small to read")
    return problems


def diagrams(tools: DevTools) -> list[tuple[dict, dict]]:
    """(node, attributes) of each svg that mermaid drew (Material puts them in closed shadow roots)."""
    found = []
    def walk(node: dict) -> None:
        attributes = dict(zip(node.get("attributes", [])[::2], node.get("attributes", [])[1::2]))
        if node.get("nodeName") == "svg" and "aria-roledescription" in attributes:
            found.append((node, attributes))
        for child in node.get("children", []) + node.get("shadowRoots", []):
            walk(child)
    walk(tools.call("DOM.getDocument", depth=-1, pierce=True)["root"])
    return found


def drawn_scale(tools: DevTools, node: dict, attributes: dict) -> float:
    """How wide the diagram is drawn, over how wide mermaid made it (1.0: full size)."""
    try:
        natural = float(attributes["viewBox"].split()[2])
        quad = tools.call("DOM.getBoxModel", nodeId=node["nodeId"])["model"]["content"]
    except (KeyError, IndexError, ValueError, RuntimeError):
        return 1.0
    return (quad[2] - quad[0]) / natural if natural else 1.0


def browser_errors(events: list[dict]) -> list[str]:
    problems = []
    for event in events:
        params = event.get("params", {})
        if event["method"] == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            problems.append(f"script error: {details.get('exception', {}).get('description') or details['text']}")
        elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") == "error":
            problems.append("console error: " + " ".join(str(a.get("value", a.get("description", "")))
                                                          for a in params.get("args", [])))
        elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
            problems.append(f"browser error: {params['entry']['text']} {params['entry'].get('url', '')}".strip())
    return problems


def link_problems(links: list[str], base: str, ids_cache: dict) -> list[str]:
    problems = []
    for link in sorted(set(links)):
        if not link.startswith(base + "/"):
            continue  # another site: the book does not check the internet
        target, _, anchor = link.partition("#")
        ids = ids_of(target, ids_cache)
        if ids is None:
            problems.append(f"broken link: {link[len(base):]}")
        elif anchor and urllib.parse.unquote(anchor) not in ids:
            problems.append(f"broken anchor: {link[len(base):]}")
    return problems


def screenshot(tools: DevTools, height: int, path: str) -> None:
    width = 1280
    tools.call("Emulation.setDeviceMetricsOverride", width=width, height=min(height, 16000),
               deviceScaleFactor=1, mobile=False)
    shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    tools.call("Emulation.clearDeviceMetricsOverride")


# --- the browser ---------------------------------------------------------------------------------

def start_chromium(profile: str) -> subprocess.Popen:
    return subprocess.Popen([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                             f"--user-data-dir={profile}", "--window-size=1280,900", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def page_target(profile: str, browser: subprocess.Popen) -> str:
    """The WebSocket URL of the browser's first tab, once its DevTools port is open."""
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.monotonic() + LOAD_WAIT_S
    while time.monotonic() < deadline:
        if browser.poll() is not None:
            raise SystemExit(f"error: {CHROMIUM} exited with {browser.returncode}")
        try:
            with open(port_file) as f:
                port = int(f.readline())
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
                targets = [t for t in json.load(response) if t["type"] == "page"]
            if targets:
                return targets[0]["webSocketDebuggerUrl"]
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"error: {CHROMIUM} opened no DevTools port within {LOAD_WAIT_S}s")


def check_site(site: str, shots: str) -> dict[str, list[str]]:
    server, base = serve(site)
    profile = tempfile.mkdtemp(prefix="dockyard-chromium-")
    browser = start_chromium(profile)
    try:
        tools = DevTools(page_target(profile, browser))
        for domain in ("Page", "Runtime", "Log", "DOM"):
            tools.call(f"{domain}.enable")
        ids_cache: dict = {}
        return {page: check_page(tools, base, page, shots, ids_cache) for page in pages(site)}
    finally:
        os.killpg(browser.pid, 9)
        browser.wait()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mkdocs", default=DEFAULT_MKDOCS, help=f"the mkdocs to build with (default {DEFAULT_MKDOCS})")
    parser.add_argument("--screenshots", default=os.path.join(ROOT, "build", "docs-screenshots"), metavar="DIR",
                        help="where to write one PNG per page (default build/docs-screenshots)")
    parser.add_argument("--site", metavar="DIR", help="check this built site instead of building one")
    args = parser.parse_args()
    for program in (CHROMIUM, args.mkdocs if not args.site else CHROMIUM):
        if not shutil.which(program):
            print(f"error: {program} not found\nhint: apt-get install chromium; make the docs venv with "
                  ".ci/run's install_docs_venv", file=sys.stderr)
            return 2
    shutil.rmtree(args.screenshots, ignore_errors=True)
    os.makedirs(args.screenshots)
    with tempfile.TemporaryDirectory() as scratch:
        site = args.site or os.path.join(scratch, "site")
        if not args.site:
            build_site(args.mkdocs, site)
        if not os.path.isfile(os.path.join(site, "index.html")):
            print(f"error: no site in {site}\nhint: build it with mkdocs build --strict", file=sys.stderr)
            return 1
        results = check_site(site, args.screenshots)
    for page, problems in results.items():
        print(f"/{page}: {'ok' if not problems else 'FAILED'}")
        for problem in problems:
            print(f"    {problem}")
    failed = sum(bool(problems) for problems in results.values())
    print(f"{len(results)} pages, {failed} failed; screenshots in {args.screenshots}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
