"""The page with API keys on, in Debian's headless Chromium: it asks for a key and sends it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from grounded_answer import load_settings
from grounded_answer.serve import create_app

from ..support.fakes import HashEmbedder
from ..support.paths import SEED
from .browser import Browser, find_chromium
from .serve_server import ServeServer

pytestmark = [pytest.mark.integration, pytest.mark.browser]

KEY = "page-key-0123456789abcdef"


@pytest.fixture
def browser() -> Iterator[Browser]:
    found = find_chromium()
    if found is None:
        message = "Chromium is not installed: apt-get install chromium (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with Browser(found) as running:
        yield running


def test_the_page_asks_for_the_key_and_sends_it(browser: Browser, tmp_path: Path) -> None:
    settings = load_settings(
        index={"cache_dir": str(tmp_path / "cache")}, serve={"api_keys": [KEY]}
    )
    with ServeServer(create_app(settings, embedder=HashEmbedder())) as server:
        page = browser.new_page()
        page.goto(server.url + "/")  # the page itself needs no key
        page.wait_for("!document.getElementById('key-field').hidden")
        page.evaluate(
            f"document.getElementById('bundle').value = "
            f"{json.dumps(SEED.read_text(encoding='utf-8'))}"
        )
        page.evaluate("document.getElementById('run').click()")
        page.wait_for(
            "document.body.dataset.state === 'idle' && "
            "document.getElementById('status').textContent.length > 0"
        )
        status = page.evaluate("document.getElementById('status').textContent")
        assert "API key is required" in status
        page.evaluate(f"""(() => {{
          const key = document.getElementById('key');
          key.value = {json.dumps(KEY)};
          key.dispatchEvent(new Event('change'));
          document.getElementById('run').click();
        }})()""")
        page.wait_for(
            "document.body.dataset.state === 'idle' && "
            "!document.getElementById('validation').hidden"
        )
        assert page.evaluate("document.getElementById('status').textContent") == "Done."
        # Kept for this tab only, never in localStorage.
        assert page.evaluate("sessionStorage.getItem('grounded-answer-key')") == KEY
        assert page.evaluate("localStorage.length") == 0
