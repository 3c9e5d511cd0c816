"""
Browser tests: a real headless Chromium (Debian's `chromium` package)
driven by Playwright (`executable_path`, no downloaded browser) against the
real `twistd zwms` of L{tests.e2e.server}.

Without Chromium or Playwright the tests are skipped, unless
ZWMS_REQUIRE_BROWSER=1 (set by .ci/run, which installs both): then a
missing browser is a failure.  Screenshots of the pages visited go to
$ZWMS_ARTIFACTS/screenshots (default: zwms-test-artifacts/screenshots in
the temporary folder, since the tests run in a scratch folder that is
removed); they are artefacts, never committed.
"""

import os
import shutil
import tempfile
import unittest

from tests.e2e.server import Server, tool

#: Where Debian puts its Chromium.
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
#: Milliseconds a page action may take before the test fails.
TIMEOUT_MS = 20000


def chromium_path():
    """The Chromium executable, or None."""
    env = os.environ.get("ZWMS_CHROMIUM")
    for path in ((env,) if env else ()) + CHROMIUM_PATHS:
        if path and os.access(path, os.X_OK):
            return path
    return None


def artifacts_dir():
    """The screenshot folder (made on first use)."""
    base = os.environ.get("ZWMS_ARTIFACTS") or os.path.join(tempfile.gettempdir(),
                                                            "zwms-test-artifacts")
    folder = os.path.join(base, "screenshots")
    os.makedirs(folder, exist_ok=True)
    return folder


def _unavailable(why):
    if os.environ.get("ZWMS_REQUIRE_BROWSER") == "1":
        raise AssertionError("browser tests required but " + why)
    raise unittest.SkipTest(why)


class BrowserTestCase(unittest.TestCase):
    """
    One server and one Chromium per test class; each test gets a fresh
    browser context (no cookies shared between tests).
    """

    #: Settings written with zwms-admin before the server starts.
    settings = (("DOMAIN", "example.com"),)

    @classmethod
    def setUpClass(cls):
        if tool("twistd") is None or tool("zwms-admin") is None:
            _unavailable("zWMS is not installed (pip install .)")
        path = chromium_path()
        if path is None:
            _unavailable("Chromium is not installed (apt-get install chromium)")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            _unavailable("Playwright is not installed (pip install playwright)")
        cls.tmp = tempfile.mkdtemp(prefix="zwms-browser-")
        cls.server = Server(os.path.join(cls.tmp, "home"))
        try:
            for key, value in cls.settings:
                cls.server.admin("config", "set", key, value)
            cls.prepare_home()
            cls.server.start()
            cls.base = "http://127.0.0.1:%d" % cls.server.ports["web"]
            cls.playwright = sync_playwright().start()
            cls.browser = cls.playwright.chromium.launch(
                executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        except BaseException:
            cls._teardown()
            raise

    @classmethod
    def prepare_home(cls):
        """Accounts and mail to set up before the server starts (override)."""

    @classmethod
    def _teardown(cls):
        browser = getattr(cls, "browser", None)
        if browser is not None:
            browser.close()
        pw = getattr(cls, "playwright", None)
        if pw is not None:
            pw.stop()
        cls.server.kill()
        shutil.rmtree(cls.tmp, True)

    @classmethod
    def tearDownClass(cls):
        cls._teardown()

    def setUp(self):
        self.context = self.browser.new_context(locale="ko-KR")
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.addCleanup(self.context.close)

    def url(self, path):
        return self.base + path

    def shot(self, name):
        """Keep a screenshot of the current page as a test artefact."""
        self.page.screenshot(path=os.path.join(artifacts_dir(), name + ".png"), full_page=True)
