"""The answer page in a real browser: Debian's headless Chromium against uvicorn on 127.0.0.1.

Marked ``browser``. Without Chromium these tests skip on a workstation but fail under
``CI=true``, where ``.ci/run`` installs it: a page test must never pass by not running.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grounded_answer import Answer, explain, load_settings, parse_bundle
from grounded_answer.grounding.links import find_links, link_key
from grounded_answer.serve import create_app

from ..support.fakes import HashEmbedder
from ..support.paths import SEED
from .browser import Browser, Page, find_chromium
from .chat_server import ChatServer, reading_model, slow
from .serve_server import ServeServer

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SEED_TEXT = SEED.read_text(encoding="utf-8")

HOSTILE = "\n".join(
    [
        "A user has asked the following question:",
        "\"How can I sharpen a blurry photo? <script>window.__pwned = 'question'</script>\"",
        "",
        "### Recommended AI Models:",
        "Model: Deblur<img src=x onerror=\"window.__pwned='title'\">Net "
        "</title><script>window.__pwned='t2'</script>",
        "Paper: https://arxiv.org/abs/2304.05538",
        "GitHub: https://github.com/kky7/MSSNet",
        "Summary: Removes motion blur from photos. "
        '<iframe src="https://evil.example.com/frame"></iframe> See '
        '<a href="https://evil.example.com/x">this</a> or javascript:alert(1) for a sharper photo.',
        "",
        "### Related Papers:",
        "Model: Deblurring <svg onload=\"window.__pwned='svg'\"></svg> with multi-scale networks",
        "Paper: https://arxiv.org/abs/2412.15677",
        "Summary: A multi-scale network deblurs photos "
        "]]></text><script>window.__pwned='cdata'</script>.",
        "",
    ]
)


@pytest.fixture(scope="module")
def chromium() -> str:
    found = find_chromium()
    if found is None:
        message = (
            "Chromium is not installed: apt-get install chromium (Debian's package; "
            ".ci/run installs it)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with Browser(chromium) as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeServer]:
    cache = tmp_path_factory.mktemp("serve-cache")
    settings = load_settings(index={"cache_dir": str(cache)})
    with ServeServer(create_app(settings, embedder=HashEmbedder())) as running:
        yield running


def local_only(page: Page, server: ServeServer) -> list[str]:
    """The page's requests that went anywhere but this server (data: URLs are local)."""
    return [url for url in page.requests() if not url.startswith((server.url + "/", "data:"))]


def ask(page: Page, bundle: str) -> None:
    page.evaluate(f"document.getElementById('bundle').value = {json.dumps(bundle)}")
    page.evaluate("document.getElementById('run').click()")


def rendered(page: Page) -> dict[str, Any]:
    facts: dict[str, Any] = page.evaluate("""(() => {
      const text = (id) => document.getElementById(id).textContent.trim();
      const img = document.getElementById('graph-img');
      return {
        question: text('question'),
        task: text('task-statement'),
        steps: [...document.querySelectorAll('#steps li')].map((li) => li.textContent),
        graphShown: !document.getElementById('graph').hidden,
        graphDecoded: img.complete && img.naturalWidth > 0,
        graphSrc: img.getAttribute('src') || '',
        refs: [...document.querySelectorAll('#refs li .title')].map((e) => e.textContent),
        hrefs: [...document.querySelectorAll('a')].map((a) => a.getAttribute('href')),
        scripts: document.querySelectorAll('script').length,
        images: document.querySelectorAll('img').length,
        frames: document.querySelectorAll('iframe, object, embed, svg').length,
        status: text('status'),
        checked: !document.getElementById('validation').hidden,
        planShown: !document.getElementById('plan').hidden,
        planRows: document.querySelectorAll('#plan-rows li').length,
        pending: document.querySelectorAll('.pending:not([hidden])').length,
        pwned: window.__pwned === undefined ? null : String(window.__pwned),
      };
    })()""")
    return facts


def test_the_seed_renders_three_sections_and_the_graph_offline(
    browser: Browser, server: ServeServer, tmp_path: Path
) -> None:
    page = browser.new_page()
    page.goto(server.url + "/")
    page.wait_for("document.getElementById('backend').options.length > 0")
    # Upload the bundle through the file input, as a user would.
    document = browser.send("DOM.getDocument", session=page.session)
    node = browser.send(
        "DOM.querySelector",
        {"nodeId": document["root"]["nodeId"], "selector": "#file"},
        session=page.session,
    )
    browser.send(
        "DOM.setFileInputFiles",
        {"files": [str(SEED)], "nodeId": node["nodeId"]},
        session=page.session,
    )
    page.wait_for("document.getElementById('bundle').value.length > 0")
    assert page.evaluate("document.getElementById('bundle').value") == SEED_TEXT
    page.evaluate("document.getElementById('run').click()")
    page.wait_for(
        "document.body.dataset.state === 'idle' && !document.getElementById('validation').hidden"
    )
    facts = rendered(page)
    assert facts["question"] == parse_bundle(SEED_TEXT).question
    assert "image deblurring" in facts["task"]
    assert facts["planShown"] and facts["planRows"] == 4  # why these sources: all four
    assert len(facts["steps"]) >= 1 and "Deblur-MSSNet-RealBlurR" in facts["steps"][0]
    assert facts["graphShown"] and facts["graphDecoded"]
    assert facts["graphSrc"].startswith("data:image/svg+xml")
    assert "Deblur-MSSNet-RealBlurR" in facts["refs"]
    assert facts["checked"] and facts["status"] == "Done." and facts["pending"] == 0
    bundle_links = {link_key(found.text) for found in find_links(SEED_TEXT)}
    assert facts["hrefs"] and all(link_key(href) in bundle_links for href in facts["hrefs"])
    assert local_only(page, server) == []
    paths = {url.removeprefix(server.url) for url in page.requests() if url.startswith(server.url)}
    assert {"/", "/static/app.js", "/static/style.css", "/healthz", "/v1/explain/stream"} <= paths


def test_a_hostile_bundle_stays_inert_on_the_page(browser: Browser, server: ServeServer) -> None:
    page = browser.new_page()
    page.goto(server.url + "/")
    ask(page, HOSTILE)
    page.wait_for(
        "document.body.dataset.state === 'idle' && !document.getElementById('validation').hidden"
    )
    facts = rendered(page)
    assert facts["pwned"] is None
    # Markup in the sources is shown as text, never built into elements.
    assert facts["scripts"] == 1 and facts["images"] == 1 and facts["frames"] == 0
    assert any("<img src=x" in title for title in facts["refs"])
    assert "<script>" in facts["question"]
    assert facts["graphDecoded"]  # the SVG stayed well-formed XML around the hostile labels
    assert all(
        link_key(href)
        in {
            link_key("https://arxiv.org/abs/2304.05538"),
            link_key("https://github.com/kky7/MSSNet"),
            link_key("https://arxiv.org/abs/2412.15677"),
        }
        for href in facts["hrefs"]
    )
    page_text = page.evaluate("document.body.innerText")
    assert "evil.example.com" not in page_text
    assert local_only(page, server) == []
    assert not any(url.startswith(server.url + "/x") for url in page.requests())


def test_the_standalone_html_of_a_hostile_answer_is_inert(browser: Browser, tmp_path: Path) -> None:
    settings = load_settings(index={"cache_dir": str(tmp_path / "cache")})
    answer: Answer = explain(
        bundle=parse_bundle(HOSTILE), settings=settings, embedder=HashEmbedder()
    )
    path = tmp_path / "answer.html"
    path.write_text(answer.to_html(), encoding="utf-8")
    page = browser.new_page()
    page.goto(path.as_uri())
    facts = page.evaluate("""({
      pwned: window.__pwned === undefined ? null : String(window.__pwned),
      scripts: document.querySelectorAll('script').length,
      images: document.querySelectorAll('img, iframe, object, embed').length,
      hrefs: [...document.querySelectorAll('a')].map((a) => a.getAttribute('href')),
      sections: [...document.querySelectorAll('section h2')].map((h) => h.textContent),
      graph: document.querySelectorAll('#workflow svg .node').length,
    })""")
    assert facts["pwned"] is None and facts["scripts"] == 0 and facts["images"] == 0
    assert facts["sections"][:3] == ["1Task", "2Workflow", "3References"]
    assert facts["graph"] >= 3
    assert all(href.startswith("https://") for href in facts["hrefs"])
    assert page.requests() == [path.as_uri()]


def test_stop_cancels_the_llm_call(tmp_path: Path, browser: Browser) -> None:
    with ChatServer([slow(5)]) as chat:
        settings = load_settings(
            index={"cache_dir": str(tmp_path / "cache")},
            llm={"backend": "openai", "base_url": chat.url, "api_key": "test", "max_retries": 0},
            answer={"mode": "free"},
            judge={"enabled": "off"},
        )
        with ServeServer(create_app(settings, embedder=HashEmbedder())) as server:
            page = browser.new_page()
            page.goto(server.url + "/")
            page.wait_for("document.getElementById('backend').options.length > 0")
            assert page.evaluate("document.getElementById('backend').value") == "openai"
            ask(page, SEED_TEXT)
            assert chat.wait_until(lambda s: len(s.requests) == 1)
            page.wait_for("!document.getElementById('stop').hidden")
            page.evaluate("document.getElementById('stop').click()")
            assert chat.wait_until(lambda s: s.hangups == 1, timeout=4)
            page.wait_for("document.body.dataset.state === 'idle'")
            assert page.evaluate("document.getElementById('status').textContent").startswith(
                "Stopped"
            )


def test_the_page_shows_what_the_model_read_and_each_section_once(
    tmp_path: Path, browser: Browser
) -> None:
    model = reading_model()

    with ChatServer(default=model) as chat:
        settings = load_settings(
            index={"cache_dir": str(tmp_path / "cache")},
            llm={
                "backend": "openai",
                "base_url": chat.url,
                "api_key": "test",
                "max_retries": 0,
                "cache": False,
            },
        )
        with ServeServer(create_app(settings, embedder=HashEmbedder())) as server:
            page = browser.new_page()
            page.goto(server.url + "/")
            page.wait_for("document.getElementById('backend').options.length > 0")
            page.evaluate(f"document.getElementById('bundle').value = {json.dumps(SEED_TEXT)}")
            page.evaluate("document.getElementById('run').click()")
            page.wait_for(
                "document.body.dataset.state === 'idle' && "
                "!document.getElementById('validation').hidden"
            )
            judged = page.evaluate(
                "[...document.querySelectorAll('#plan-rows .judged')].map(e => e.textContent)"
            )
            steps = page.evaluate("document.querySelectorAll('#steps li').length")
            refs = page.evaluate(
                "[...document.querySelectorAll('#refs li .label')].map(e => e.textContent)"
            )
    assert len(judged) == 3 and all("P(yes)" in text for text in judged)
    assert steps == 1
    assert len(refs) == len(set(refs))
