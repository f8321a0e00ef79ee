"""The browser harness itself (tests/browser.py): Debian's Chromium under Playwright fills and submits
a form served from loopback, and text put into the page with textContent never runs as script (what
the dashboard tests check of the dashboard)."""

import html
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from playwright.sync_api import Page, expect

import browser as harness

# Text a caller could put in a note; must show as text, never run.
PAYLOADS = ["<script>window.__injected = true</script>",
            '<img src="/missing.png" onerror="window.__injected = true">']

FORM_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Callback</title></head>
<body>
<h1>Request a callback</h1>
<form id="callback" method="post" action="/submit">
  <label>Name <input name="name" id="name" required></label>
  <label>Number <input name="number" id="number"></label>
  <input type="hidden" name="chars" id="chars">
  <span id="counter">0 characters</span>
  <button type="submit">Send</button>
</form>
<script>
  const name = document.getElementById("name");
  name.addEventListener("input", () => {
    document.getElementById("counter").textContent = name.value.length + " characters";
  });
  document.getElementById("callback").addEventListener("submit", () => {
    document.getElementById("chars").value = String(name.value.length);
  });
</script>
</body></html>"""

NOTES_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Notes</title></head>
<body>
<ul id="notes"></ul>
<div id="control"></div>
<script>
  fetch("/api/notes").then(r => r.json()).then(notes => {
    const list = document.getElementById("notes");
    for (const note of notes) {
      const item = document.createElement("li");
      item.textContent = note;
      list.appendChild(item);
    }
    document.body.dataset.loaded = "yes";
  });
</script>
</body></html>"""


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: str, content_type: str = "text/html; charset=utf-8",
              headers: dict = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/":
            self._send(200, FORM_PAGE)
        elif self.path == "/notes":
            self._send(200, NOTES_PAGE)
        elif self.path == "/api/notes":
            self._send(200, json.dumps(PAYLOADS), "application/json")
        else:
            self._send(404, "not found", "text/plain")

    def do_POST(self) -> None:
        if self.path != "/submit":
            self._send(404, "not found", "text/plain")
            return
        length = int(self.headers.get("Content-Length", 0))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        name = form.get("name", [""])[0]
        number = form.get("number", [""])[0]
        chars = form.get("chars", [""])[0]
        body = (f"<!doctype html><title>Thanks</title><h1 id='thanks'>Thanks, {html.escape(name)}</h1>"
                f"<p id='number'>We will call {html.escape(number)}.</p>"
                f"<p id='chars'>{html.escape(chars)}</p>")
        self._send(200, body, headers={"Set-Cookie": "callback=requested; Path=/"})

    def log_message(self, format, *args) -> None:  # quiet
        pass


@pytest.fixture
def site() -> Iterator[str]:
    """The pages above on a free loopback port; the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_fills_and_submits_a_form(page: Page, site: str) -> None:
    assert harness.launch_seconds, "the browser fixture records its launch time"
    print(f"chromium {page.context.browser.version} launched in {harness.launch_seconds[-1]:.2f} s")
    assert harness.launch_seconds[-1] < 30
    assert page.context.cookies() == []  # a fresh context

    page.goto(site + "/")
    expect(page).to_have_title("Callback")
    page.fill("#name", "Åse <b>Berg</b>")
    expect(page.locator("#counter")).to_have_text("15 characters")  # the page's JS ran
    page.fill("#number", "+4570101010")
    page.click("button[type=submit]")

    expect(page).to_have_url(site + "/submit")
    expect(page.locator("#thanks")).to_have_text("Thanks, Åse <b>Berg</b>")
    expect(page.locator("#number")).to_have_text("We will call +4570101010.")
    expect(page.locator("#chars")).to_have_text("15")  # set by the submit handler
    assert [c["name"] for c in page.context.cookies()] == ["callback"]


def test_text_content_never_runs_as_script(page: Page, site: str) -> None:
    assert page.context.cookies() == []  # nothing left from the other test's context

    page.goto(site + "/notes")
    expect(page.locator("body[data-loaded=yes]")).to_have_count(1)
    expect(page.locator("#notes li")).to_have_text(PAYLOADS)  # shown literally, as text
    assert page.locator("#notes script, #notes img").count() == 0
    page.wait_for_timeout(300)  # time for an image's onerror, had one been made
    assert page.evaluate("window.__injected") is None

    # The check can see an injection: the same text as HTML does run (the image's onerror).
    page.evaluate("html => { document.getElementById('control').innerHTML = html; }", PAYLOADS[1])
    page.wait_for_function("window.__injected === true")
