"""Answer.to_html() and the workflow SVG: complete, escaped, and holding only allowed links."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from grounded_answer import Answer, Settings, explain, parse_bundle
from grounded_answer.grounding.links import find_links, link_key
from grounded_answer.render import answer_html, plan_view, workflow_svg

from ..support.fakes import HashEmbedder
from ..support.paths import SEED

HOSTILE = "\n".join(
    [
        "A user has asked the following question:",
        "\"Sharpen my photo? <script>alert('q')</script>\"",
        "",
        "### Recommended AI Models:",
        'Model: Deblur<img src=x onerror="alert(1)">Net & "friends" ]]> </svg>',
        "Paper: https://arxiv.org/abs/2304.05538",
        "GitHub: https://github.com/kky7/MSSNet",
        'Summary: Removes motion blur. <iframe src="https://evil.example.com/f"></iframe> Also '
        "see evil.example.com and javascript:alert(1). Control \x01 character.",
        "",
    ]
)

PLAN = {
    "sources": [
        {
            "source_id": "deblur-mssnet-realblurr",
            "title": "Deblur-MSSNet-RealBlurR",
            "role": "model",
            "relevance": "recommended",
            "reason": "It removes blur <b>now</b>.",
        },
        {
            "source_id": "imagenet-hard",
            "title": "ImageNet-Hard",
            "role": "paper",
            "relevance": "not_relevant",
            "reason": "About classification, not deblurring.",
        },
    ],
    "verdict": {"answerable": True, "reason": "A recommended model does the task."},
}


def answer_for(
    text: str, settings: Settings, *, min_score: float = -1.0, question: str | None = None
) -> Answer:
    """The stub's answer; ``min_score`` decides whether the sources count as covering it."""
    settings = settings.model_copy(
        update={"retrieval": settings.retrieval.model_copy(update={"min_score": min_score})}
    )
    return explain(question, bundle=parse_bundle(text), settings=settings, embedder=HashEmbedder())


@pytest.fixture
def seed_answer(settings: Settings) -> Answer:
    return answer_for(SEED.read_text(encoding="utf-8"), settings)


def test_the_page_has_the_three_sections_the_graph_and_no_script(seed_answer: Answer) -> None:
    page = seed_answer.to_html()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    for section in ('id="task"', 'id="workflow"', 'id="references"', 'id="validation"'):
        assert section in page
    assert "<script" not in page and "Content-Security-Policy" in page
    assert "default-src 'none'" in page
    assert page.count('<g class="node ') == len(seed_answer.workflow.steps) + 2  # type: ignore[union-attr]
    without_plan = seed_answer.model_copy(update={"plan": None}).to_html()
    assert 'id="plan"' not in without_plan  # no plan: no empty section


def test_only_the_source_records_links_are_links(seed_answer: Answer) -> None:
    page = seed_answer.to_html()
    allowed = {link_key(link) for link in seed_answer.allowed_links}
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs and all(link_key(html.unescape(href)) in allowed for href in hrefs)
    assert {html.unescape(h) for h in hrefs} == {
        url for ref in seed_answer.references for url in (ref.paper_url, ref.github_url) if url
    }
    # Nothing else a reader sees, once unescaped, is a link outside the sources either
    # (the style sheet and the security policy are code, not text: ".verdict.no" and
    # "img-src data:" read as links to a finder that knows every top-level domain).
    shown = re.sub(r"<style>.*?</style>|<meta [^>]*>", " ", page, flags=re.S)
    assert all(found.key in allowed for found in find_links(html.unescape(shown)))


def test_hostile_source_text_is_escaped_everywhere(settings: Settings) -> None:
    answer = answer_for(HOSTILE, settings)
    page = answer.to_html()
    for raw in ("<script", "<img", "<iframe", 'onerror="', "\x01"):
        assert raw not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page  # shown, as text
    assert "evil.example.com" not in page
    assert not re.search(r'href="(?!https://)', page)
    # The SVG graph is well-formed XML around the same hostile labels.
    assert answer.workflow is not None
    svg = workflow_svg(answer.workflow, standalone=True)
    root = ET.fromstring(svg)
    labels = "".join(root.itertext())
    assert "Deblur<img src=x" in labels and "]]>" in labels


def test_the_evidence_plan_says_why_these_sources(seed_answer: Answer) -> None:
    plan = seed_answer.plan
    assert plan is not None and plan.sources
    page = seed_answer.to_html()
    section = page[page.index('id="plan"') : page.index('id="validation"')]
    assert "Why these sources" in section
    assert section.count("<li class=") == len(plan.sources)
    for source in plan.sources:
        assert f'<li class="{source.relevance.value}">' in section
        assert html.escape(source.reason, quote=True) in section
        assert f'<span class="label">{source.label}</span>' in section
    assert ("Answerable." if plan.verdict.answerable else "Not answerable.") in section


def test_a_plans_text_is_escaped(seed_answer: Answer) -> None:
    view = plan_view(PLAN)
    assert view is not None
    page = seed_answer.to_html()
    assert "<b>now</b>" not in page
    from grounded_answer.render.html import _plan_html

    rendered = "".join(_plan_html(view, {}, lambda text: html.escape(text, quote=True)))
    assert "&lt;b&gt;now&lt;/b&gt;" in rendered and '<li class="not_relevant">' in rendered


@pytest.mark.parametrize(
    ("plan", "rows", "answerable"),
    [
        (None, None, None),
        ("not a plan", None, None),
        ({"verdict": {"answerable": False, "reason": "nothing fits"}}, 0, False),
        ({"entries": PLAN["sources"]}, 2, None),  # whatever the list is called
        (PLAN, 2, True),
    ],
)
def test_plan_view_reads_the_plan_by_its_field_names(
    plan: Any, rows: int | None, answerable: bool | None
) -> None:
    view = plan_view(plan)
    if rows is None:
        assert view is None
    else:
        assert view is not None and len(view.rows) == rows and view.answerable is answerable


def test_an_unanswerable_answer_says_why_instead_of_a_graph(settings: Settings) -> None:
    answer = answer_for(
        SEED.read_text(encoding="utf-8"),
        settings,
        min_score=1.0,
        question="What is the capital of France?",
    )
    assert not answer.answerable
    page = answer_html(answer)
    assert "<svg" not in page and "do not fully answer" in page
