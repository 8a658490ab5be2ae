"""Escaped text is text: proved by parsing it with a real CommonMark parser (markdown-it-py)."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from grounded_answer.grounding.markdown import escape, markdown_link

from ..support.oracle import markdown_tokens

HOSTILE = [
    r"\[x\](//evil.io/w)",
    r"\<img src=//evil.io/p.png\>",
    r"\[x\](javascript:alert(1))",
    "[x](javascript:alert(1))",
    "![i](https://evil.io/p.png)",
    '<a href="https://evil.io">x</a>',
    "<https://evil.io>",
    "<script>alert(1)</script>",
    "&#91;x&#93;(//evil.io)",
    "&lt;img src=x&gt;",
    "`code` and ``more``",
    "[x]: //evil.io/ref",
    "[x][] and [^1]",
    "**bold** _it_ ~~gone~~ | a | b |",
    "# heading",
    "> quote",
    "1. item",
    "3) item",
    "- item",
    "+ item",
    "=== underline",
    "***",
    "    indented code",
    "```\nfenced\n```",
    "trailing backslash \\",
    "$\\href{https://evil.io}{x}$",
    "{: href=//evil.io}",
    "@someone",
    "a\n\n<div>block</div>",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markdown_renders_as_its_own_text(text: str) -> None:
    tokens = markdown_tokens(escape(text), linkify=False)
    assert tokens.hrefs == [] and tokens.images == [] and tokens.html == []
    assert tokens.text == " ".join(text.split())


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markdown_inside_the_answer_layout(text: str) -> None:
    # The reference line's layout: bold title, then prose, then the library's own link.
    line = f"- S1 **{escape(text)}** (paper): {escape(text)} " + markdown_link(
        "Paper", "https://a.org/p"
    )
    tokens = markdown_tokens(line, linkify=False)
    assert tokens.hrefs == ["https://a.org/p"]
    assert tokens.images == [] and tokens.html == []


MARKDOWNISH = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("\\`*_[]()<>!&#;:/.|~$@{}=+-0123456789 \t\nx")),
        st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    ),
    max_size=60,
)


@hsettings(max_examples=400, deadline=None)
@given(MARKDOWNISH)
def test_any_text_renders_as_itself(text: str) -> None:
    tokens = markdown_tokens(escape(text), linkify=False)
    assert tokens.hrefs == [] and tokens.images == [] and tokens.html == []
    assert tokens.text == " ".join(text.split())


def test_links_with_parentheses_render_whole() -> None:
    url = "https://en.wikipedia.org/wiki/Deblurring_(imaging)"
    rendered = markdown_link("Paper", url)
    assert rendered == f"[Paper](<{url}>)"
    tokens = markdown_tokens(f"see {rendered} now", linkify=False)
    assert [unquote(href) for href in tokens.hrefs] == [url]


@pytest.mark.parametrize(
    "url",
    [
        "https://a.org/x)[evil](//evil.io/w",
        "javascript:alert(1)",
        "https://evil.io@github.com/a/b",
        "https://a.org/x y",
    ],
)
def test_an_unsafe_destination_is_not_rendered(url: str) -> None:
    assert markdown_link("Paper", url) == ""
