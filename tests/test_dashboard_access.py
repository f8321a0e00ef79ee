"""The dashboard on a phone and without a mouse: each role's pages at a 390 px wide phone screen
(no sideways scrolling of the page, text at least 14 px), axe-core's accessibility rules (no
serious or critical findings), keyboard focus that shows, and error pages that keep the navigation.

axe-core comes from npm (package.json, installed by scripts/install.sh into node_modules/)."""

import datetime as dt
from typing import Iterator, Optional

import pytest
from playwright.sync_api import Browser, Page, expect

from browser import TIMEOUT_MS
from conftest import REPO
from test_dashboard import dash, sign_in  # noqa: F401 (dash: the fixture, a bot of this module's own)
from voicebot.store import RecordStore

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
MIN_TEXT_PX = 14
CALL = "{call}"  # the demo call placed by the `dash` fixture

# (who signs in, page): every role's pages, and error pages signed in and out.
PAGES = [
    ("olga", "/dashboard/operations"),
    ("olga", "/dashboard/calls"),
    ("olga", "/dashboard/callbacks"),
    ("olga", "/dashboard/conversations"),
    ("olga", "/dashboard/calls/" + CALL),
    ("olga", "/dashboard/calls/nonexistent"),  # 404
    ("alice", "/dashboard/desk"),
    ("alice", "/dashboard/callbacks"),
    ("alice", "/dashboard/calls/" + CALL),
    ("tom", "/dashboard/inbox"),
    ("tom", "/dashboard/topics"),
    ("tom", "/dashboard/topics/passport"),
    ("tom", "/dashboard/training"),
    ("tom", "/dashboard/try?line=demo-city&text=when+are+you+open"),
    ("tom", "/dashboard/conversations"),
    ("tom", "/dashboard/operations"),  # 403: another role's page
    ("lena", "/dashboard/topics/passport"),  # a trainer of one line: fewer forms
    ("ada", "/dashboard/audit"),
    (None, "/dashboard/login"),
    (None, "/dashboard/static/nothing.css"),  # 404 signed out
]
PAGE_IDS = [f"{who or 'signed-out'}:{path.split('?')[0].removeprefix('/dashboard/')}" for who, path in PAGES]

# The computed size of every visible piece of body text, in CSS pixels.
TEXT = ", ".join([*(f"main {tag}" for tag in ("p", "td", "th", "li", "dd", "label", "input", "select", "textarea",
                                                "button", "summary")), "header a", "header span"])
TEXT_SIZES = """(selector) => [...document.querySelectorAll(selector)]
  .filter(e => e.getClientRects().length && e.textContent.trim() + (e.value || "") !== "")
  .map(e => [e.tagName.toLowerCase() + (e.id ? "#" + e.id : ""), parseFloat(getComputedStyle(e).fontSize)])"""

# Elements wider than the screen, to name in a failure.
TOO_WIDE = """(width) => [...document.querySelectorAll("body *")]
  .filter(e => e.getBoundingClientRect().right > width + 0.5 && !e.closest(".table-scroll"))
  .slice(0, 5).map(e => e.outerHTML.slice(0, 120))"""

AXE_SERIOUS = """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
  .filter(v => v.impact === "serious" || v.impact === "critical")
  .map(v => ({id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 4).map(n => n.target.join(" ") + ": " + n.failureSummary.replace(/\\s+/g, " "))}))"""


@pytest.fixture(scope="module", autouse=True)
def waiting_callback(dash):
    """A callback to make: the callbacks page has a row, with its button."""
    RecordStore(dash.store_url).add_callback("demo-kommune", dash.script_id, "+4512345678", "passport",
                                             dt.datetime.now(dt.timezone.utc))


@pytest.fixture
def phone(browser: Browser, request) -> Iterator:
    """Opens a page in a fresh phone-sized context (a mobile browser, which honours the viewport
    tag), signed in as `who` or not at all. bypass_csp lets axe-core's script tag in: the
    dashboard's content security policy forbids scripts it does not serve itself."""
    contexts = []

    def open_page(who: Optional[str], path: str, bypass_csp: bool = False) -> Page:
        context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2,
                                      bypass_csp=bypass_csp)
        contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        if who:
            sign_in(page, dash_server, who)
            expect(page.locator("header nav")).to_be_visible()
        page.goto(dash_server.url + path.replace(CALL, dash_server.call["call_id"]))
        return page

    dash_server = request.getfixturevalue("dash")
    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()


@pytest.mark.parametrize("who, path", PAGES, ids=PAGE_IDS)
def test_pages_fit_a_phone_screen(phone, who, path, tmp_path):
    page = phone(who, path)
    page.screenshot(path=tmp_path / "phone.png", full_page=True)  # to look at when this fails
    # Without the viewport tag a phone lays the page out 980 px wide and shrinks it to fit.
    assert page.evaluate("document.documentElement.clientWidth") == PHONE["width"]
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= PHONE["width"], \
        f"the page scrolls sideways ({scroll_width} px); too wide: {page.evaluate(TOO_WIDE, PHONE['width'])}"
    sizes = page.evaluate(TEXT_SIZES, TEXT)
    assert sizes, "no text found"
    small = [(element, px) for element, px in sizes if px < MIN_TEXT_PX]
    assert not small, f"text smaller than {MIN_TEXT_PX} px: {small[:5]}"
    assert (tmp_path / "phone.png").stat().st_size > 0


@pytest.mark.parametrize("who, path", PAGES, ids=PAGE_IDS)
def test_pages_pass_axe(phone, who, path):
    if not AXE.is_file():
        pytest.fail(f"no {AXE.relative_to(REPO)}: run scripts/install.sh (it installs axe-core with npm ci)",
                    pytrace=False)
    page = phone(who, path, bypass_csp=True)
    page.add_script_tag(path=AXE)
    findings = page.evaluate(AXE_SERIOUS)
    assert not findings, "\n".join(f"{f['impact']} {f['id']}: {f['help']}\n  " + "\n  ".join(f["nodes"])
                                   for f in findings)


def focused(page: Page) -> dict:
    return page.evaluate("""() => { const e = document.activeElement, style = getComputedStyle(e);
        return {text: e.textContent.trim(), tag: e.tagName.toLowerCase(), id: e.id,
                outline: style.outlineStyle, outlineWidth: parseFloat(style.outlineWidth), shadow: style.boxShadow}; }""")


def shows_focus(element: dict) -> bool:
    return (element["outline"] != "none" and element["outlineWidth"] >= 2) or element["shadow"] != "none"


def test_the_keyboard_reaches_the_content_and_shows_where_it_is(phone):
    page = phone("olga", "/dashboard/calls")
    page.keyboard.press("Tab")
    skip = focused(page)
    assert skip["text"] == "Skip to content" and shows_focus(skip), skip
    page.keyboard.press("Tab")
    first_link = focused(page)
    assert first_link["text"] == "Operations" and shows_focus(first_link), first_link
    # The skip link moves the keyboard past the navigation, into the page's own content.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    inside = focused(page)
    assert page.evaluate("document.activeElement.closest('main') !== null"), inside
    assert inside["tag"] == "input" and shows_focus(inside), inside


def test_error_pages_keep_the_navigation(phone):
    page = phone("olga", "/dashboard/calls/nonexistent")
    expect(page.locator("#message")).to_contain_text("no call")
    expect(page.locator("header nav a", has_text="Operations")).to_be_visible()
    expect(page.locator("header nav a", has_text="Calls")).to_be_visible()
    expect(page.locator("header button", has_text="Sign out")).to_be_visible()
    # Refused before the page knew who asked: the navigation is still the signed-in person's.
    page = phone("tom", "/dashboard/operations")
    expect(page.locator("#message")).to_contain_text("your role cannot see this page")
    expect(page.locator("header nav a", has_text="Review inbox")).to_be_visible()
    page = phone(None, "/dashboard/static/nothing.css")
    expect(page.locator("header a", has_text="Sign in")).to_be_visible()
