"""The live view in a real browser (make test-web; not part of make test):
Debian's chromium, headless, driven through chromedriver by selenium.

A user registered and connected through the protocol appears on the page
within 2 s; a published file and an expiry show; a user whose name is
markup is shown as text and runs nothing; a screenshot is written to
build/web/live-view.png."""
import os
import socket
import time

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import harness

SHOTS = os.path.join(harness.ROOT, "build", "web")
SHOWN_WITHIN = 2.0          # the page polls every 0.5 s: a wide margin
SETTLED_WITHIN = 5.0        # for what only has to show, not how fast


@pytest.fixture
def live(make_server):
    """A server with the live view and 1 s liveness probes: (server, url)."""
    srv = make_server("-H", "0", "-L", "1", "-N", "1", "-t", "2")
    m = srv.wait_line(r"live view at (http://127\.0\.0\.1:\d+/)", stderr=True)
    return srv, m.group(1)


@pytest.fixture
def browser(tmp_path):
    """Headless chromium with a fresh profile, quit afterwards."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                "--user-data-dir=%s" % (tmp_path / "profile")):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def texts(driver, css, attr=None):
    """The text (or attribute attr) of every element matching css, read in
    one script: the page redraws twice a second, so elements found in one
    call may be gone in the next."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]))"
        ".map(e => arguments[1] ? e.getAttribute(arguments[1]) : e.textContent)", css, attr)


def rows(driver):
    """The operations listed, as [user, operation] pairs."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#ops tbody tr')).map(tr => "
        "[tr.querySelector('.user').textContent, tr.querySelector('.op').textContent])")


def shown(driver, css, text, within=SETTLED_WITHIN):
    """Wait until an element matching css has exactly this text."""
    WebDriverWait(driver, within, poll_frequency=0.05).until(
        lambda d: text in texts(d, css),
        "%r not shown in %s within %s s" % (text, css, within))


def test_users_files_and_expiry_appear(live, browser):
    srv, url = live
    browser.get(url)
    WebDriverWait(browser, 10).until(lambda d: "live" in texts(d, "#status")[0])

    alice = harness.fixed_port()
    with socket.socket() as listener:     # alice's peer server, alive
        listener.bind(("127.0.0.1", alice))
        listener.listen(8)
        assert harness.code(srv.port, "REGISTER", "alice") == 0
        assert harness.code(srv.port, "CONNECT", "alice", str(alice)) == 0
        start = time.monotonic()
        shown(browser, "#user-table td.name", "alice", SHOWN_WITHIN)
        assert time.monotonic() - start < SHOWN_WITHIN
        assert "alice" in texts(browser, "#picture g.user", "data-name")

        assert harness.code(srv.port, "PUBLISH", "alice", "/songs/blue.mp3", "a song") == 0
        start = time.monotonic()
        shown(browser, "#ops td.path", "/songs/blue.mp3", SHOWN_WITHIN)
        assert time.monotonic() - start < SHOWN_WITHIN
        shown(browser, "#user-table td.files", "1")
        shown(browser, "#c-files", "1")

        # bob's client "crashes": nobody listens on his port, so he expires.
        assert harness.code(srv.port, "REGISTER", "bob") == 0
        assert harness.code(srv.port, "CONNECT", "bob", str(harness.fixed_port())) == 0
        # (He may expire before the page's next poll: his CONNECT stays listed.)
        WebDriverWait(browser, SETTLED_WITHIN).until(
            lambda d: any(r == ["bob", "CONNECT"] for r in rows(d)))
        srv.wait_line(r"^s> EXPIRED bob ", timeout=10)
        shown(browser, "#ops tr.expired td.user", "bob")
        WebDriverWait(browser, SETTLED_WITHIN).until(
            lambda d: "bob" not in texts(d, "#user-table td.name"))
        assert "alice" in texts(browser, "#user-table td.name")

        # carol joins with three files: the picture the screenshot keeps.
        assert harness.code(srv.port, "REGISTER", "carol") == 0
        assert harness.code(srv.port, "CONNECT", "carol", str(alice)) == 0
        for song in ("/music/a.ogg", "/music/b.ogg", "/music/c.ogg"):
            assert harness.code(srv.port, "PUBLISH", "carol", song, "music") == 0
        assert harness.code(srv.port, "LIST_CONTENT", "alice", "carol") == 0
        shown(browser, "#c-files", "4")
        os.makedirs(SHOTS, exist_ok=True)
        assert browser.save_screenshot(os.path.join(SHOTS, "live-view.png"))


XSS = "<img/src=x/onerror=window.pwned=1>"


def test_markup_in_a_name_is_text(live, browser):
    srv, url = live
    browser.get(url)
    WebDriverWait(browser, 10).until(lambda d: "live" in texts(d, "#status")[0])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        assert harness.code(srv.port, "REGISTER", XSS) == 0
        assert harness.code(srv.port, "CONNECT", XSS, str(listener.getsockname()[1])) == 0
        assert harness.code(srv.port, "PUBLISH", XSS, "/<b>bold</b>", "d") == 0
        shown(browser, "#user-table td.name", XSS)
        shown(browser, "#ops td.user", XSS)
        shown(browser, "#ops td.path", "/<b>bold</b>")
    finally:
        listener.close()
    assert browser.find_elements(By.TAG_NAME, "img") == []
    assert browser.find_elements(By.TAG_NAME, "b") == []
    assert browser.execute_script("return window.pwned === undefined") is True
    # Nothing even tried to run: no Content-Security-Policy report either.
    assert not [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
