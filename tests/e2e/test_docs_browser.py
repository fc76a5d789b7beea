"""``/docs`` in a real headless Chromium, with every name but loopback unresolvable: Swagger UI renders
every documented operation and the Authorize button from the stack's own assets, with no network.

Playwright drives Debian's ``chromium`` (``.ci/run`` installs it) by its path: no browser is ever
downloaded. The test skips only when no ``chromium`` is installed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import TIMEOUT, Stack

pytestmark = pytest.mark.e2e

RENDER_TIMEOUT_MS = 60_000
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
FLAGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    # no name but loopback resolves: a script or stylesheet from a CDN could not load
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# The URL of every script, stylesheet and fetch the page made (its Resource Timing entries).
RESOURCES_JS = "() => performance.getEntriesByType('resource').map(e => e.name)"
# (METHOD, data-path) of every operation block Swagger UI has drawn so far
OPERATIONS_JS = """() => [...document.querySelectorAll('.opblock')].flatMap(block => {
    const method = block.querySelector('.opblock-summary-method');
    const path = block.querySelector('.opblock-summary-path');
    if (!method || !path) return [];
    return [[method.textContent.trim().toUpperCase(), path.getAttribute('data-path') || '']];
})"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium on PATH; on Debian: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def screenshot_on_failure(page: Any, folder: Path) -> Iterator[None]:
    """On any failure, save what the browser shows (and its HTML) to ``folder`` and say where."""
    try:
        yield
    except BaseException as exc:
        shot, html = folder / "docs.png", folder / "docs.html"
        with suppress(Exception):  # a browser that died keeps the original failure in view
            page.screenshot(path=str(shot), full_page=True)
            html.write_text(page.content())
        exc.add_note(f"the page as rendered: {shot} and {html}")
        raise


@pytest.fixture(scope="module")
def spec(stack: Stack) -> dict[str, Any]:
    response = httpx.get(stack.ready["api_url"] + "/openapi.json", timeout=TIMEOUT).raise_for_status()
    return dict(response.json())


@pytest.fixture(scope="module")
def documented(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (METHOD, path) the served OpenAPI document declares."""
    return {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def rendered_operations(page: Any) -> set[tuple[str, str]]:
    return {(method, path) for method, path in page.evaluate(OPERATIONS_JS)}


@pytest.fixture
def docs(browser: Any, stack: Stack, tmp_path: Path) -> Iterator[Any]:
    """``/docs`` loaded, once Swagger UI has drawn the segmentation operations."""
    page = browser.new_page(viewport={"width": 1280, "height": 2000})
    try:
        with screenshot_on_failure(page, tmp_path):
            page.goto(stack.ready["api_url"] + "/docs", timeout=RENDER_TIMEOUT_MS)
            page.wait_for_selector(
                '.opblock-summary-path[data-path="/v1/segmentations"]', timeout=RENDER_TIMEOUT_MS
            )
            yield page
    finally:
        page.close()


def test_docs_page_renders_every_documented_operation(
    docs: Any, documented: set[tuple[str, str]], tmp_path: Path
) -> None:
    with screenshot_on_failure(docs, tmp_path):
        assert rendered_operations(docs) == documented


def test_docs_page_loads_nothing_but_from_loopback(docs: Any, tmp_path: Path) -> None:
    with screenshot_on_failure(docs, tmp_path):
        loaded = docs.evaluate(RESOURCES_JS)
        assert loaded, "the page loaded no script, stylesheet or document"
        assert {urlsplit(url).hostname for url in loaded} <= LOOPBACK, loaded


def test_docs_page_authorize_button_offers_every_security_scheme(
    docs: Any, spec: dict[str, Any], tmp_path: Path
) -> None:
    schemes = set(spec.get("components", {}).get("securitySchemes", {}))
    with screenshot_on_failure(docs, tmp_path):
        assert "bearer" in schemes, f"the document declares no bearer scheme, only {schemes}"
        docs.click(".btn.authorize")
        docs.wait_for_selector(".modal-ux .auth-container h4", timeout=RENDER_TIMEOUT_MS)
        offered = docs.locator(".modal-ux .auth-container h4").all_inner_texts()
        assert {heading.split()[0] for heading in offered} == schemes
