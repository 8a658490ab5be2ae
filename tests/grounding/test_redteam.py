"""The red team's attacks as a generator: no foreign link survives, in any field, either rendering.

Hypothesis writes obfuscated link spellings (schemes, ``//host``, invisible characters,
fullwidth and look-alike letters, HTML entities, ideographic full stops, CJK glue,
Markdown escapes and wrappers, e-mail and git addresses, IPs with ports, ``javascript:``
and ``data:`` URIs, arXiv ids in fullwidth digits or the old ``cs/0112017`` style) and
hostile Markdown, and puts them in every field an answer is made from: the question,
source titles and summaries, Paper/GitHub fields, and every prose field of the model's
output. Both renderings are then checked by code that shares nothing with the library's
link finder (``tests/oracle.py``): the reader's view never shows the attacker's host,
address or paper id, linkify-it finds only allowed links in it, and markdown-it finds no
image, no HTML and no link but the library's own.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from grounded_answer import (
    Answer,
    BundleParseError,
    Settings,
    UngroundedAnswerError,
    explain,
    parse_bundle,
)
from grounded_answer.backends.stub import StubBackend

from ..support.fakes import HashEmbedder
from ..support.oracle import canonical, linkified, markdown_tokens, reader_view
from ..support.paths import SEED

ATTACKER = "zqxevil"
TLDS = ["io", "zip", "sh", "com", "ai", "xyz", "co"]
# What the attacker wants a reader to see; none may appear in the reader's view. A host
# counts when its TLD ends there ("zqxevil.zip7" is no host anywhere).
MARKERS = re.compile(
    rf"{ATTACKER}\.(?:{'|'.join(TLDS)})(?![a-z0-9])|javascript:|vbscript:|data:text|mailto:|"
    r"file:/|10\.66\.77\.88|2312\.99999|cs/0112017|hep-th/9901001"
)
FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in map(chr, range(0x21, 0x7F))}
LOOK_ALIKE = {
    "e": "\u0435",
    "o": "\u043e",
    "a": "\u0430",
    "c": "\u0441",
    "x": "\u0445",
    "p": "\u0440",
    "i": "\u0456",
    "s": "\u0455",
}
INVISIBLE = ["\u200b", "\u00ad", "\u2060", "\ufeff", "\u200d", "\u034f", "\u3164"]
DOTS = ["\u3002", "\uff0e", "\uff61", "&#46;", "&period;", "&#x2e;", "\\.", "\u2024"]


@st.composite
def host_link(draw: st.DrawFn) -> str:
    scheme = draw(
        st.sampled_from(
            [
                "",
                "https://",
                "http://",
                "hxxp://",
                "//",
                "ftp://",
                "file://",
                "http:/",
                "https:\\\\",
                "HTTPS://",
                "www.",
            ]
        )
    )
    tld = draw(st.sampled_from(TLDS))
    tail = draw(st.sampled_from(["", "/w", "/p.png", "/a/b?x=1", ":8080/x", "/x_(y)"]))
    link = f"{scheme}{ATTACKER}.{tld}{tail}"
    for _ in range(draw(st.integers(0, 3))):
        link = draw(st.sampled_from(TRANSFORMS))(draw, link)
    return link


def _invisible(draw: st.DrawFn, link: str) -> str:
    at = draw(st.integers(0, len(link)))
    return link[:at] + draw(st.sampled_from(INVISIBLE)) + link[at:]


def _fullwidth(draw: st.DrawFn, link: str) -> str:
    mask = draw(st.lists(st.booleans(), min_size=len(link), max_size=len(link)))
    return "".join(FULLWIDTH.get(c, c) if m else c for c, m in zip(link, mask, strict=True))


def _dots(draw: st.DrawFn, link: str) -> str:
    return link.replace(".", draw(st.sampled_from(DOTS)))


def _entities(draw: st.DrawFn, link: str) -> str:
    colon = draw(st.sampled_from(["&#58;", "&colon;", "&#x3a;", ":"]))
    slash = draw(st.sampled_from(["&#47;", "&sol;", "/"]))
    return link.replace(":", colon).replace("/", slash)


def _look_alikes(draw: st.DrawFn, link: str) -> str:
    keep = draw(st.integers(0, 3))
    return "".join(LOOK_ALIKE.get(c, c) if i % 4 != keep else c for i, c in enumerate(link))


def _glue(draw: st.DrawFn, link: str) -> str:
    before = draw(
        st.sampled_from(
            [
                "",
                "\uc0ac\uc774\ud2b8",
                "\u6765\u81ea",
                "\u3053\u3053",
                ".",
                "/",
                "-",
                "@",
                "_",
                "(",
                "\\",
                "x",
                "+",
                "~",
                "=",
                "'",
                "!",
                "*",
                "|",
                ",",
            ]
        )
    )
    after = draw(st.sampled_from(["", "\uc5d0\uc11c", "\u7684\u6a21\u578b", "\u3092", ")", "_"]))
    return f"{before}{link}{after}"


def _markdown(draw: st.DrawFn, link: str) -> str:
    form = draw(
        st.sampled_from(
            [
                "[x]({})",
                "<{}>",
                "![i]({})",
                "\\[x\\]({})",
                "[x]: {}",
                '<a href="{}">x</a>',
                "_{}_",
                "__{}__",
                "*{}*",
                "**{}**",
                "`{}`",
                "\\<img src={}\\>",
                "[x](<{}>)",
            ]
        )
    )
    return form.format(link)


TRANSFORMS = [_invisible, _fullwidth, _dots, _entities, _look_alikes, _glue, _markdown]

OTHER_LINKS = st.sampled_from(
    [
        f"user@{ATTACKER}.io",
        f"git@{ATTACKER}.io:owner/repo",
        f"mailto:a@{ATTACKER}.io",
        "javascript:alert(1)",
        "JaVaScRiPt:alert(document.cookie)",
        "data:text/html,<b>x</b>",
        "10.66.77.88:8080",
        "http://10.66.77.88/admin",
        "2312.99999",
        "arXiv:2312.99999v2",
        "arXiv:\uff12\uff13\uff11\uff12\uff0e\uff19\uff19\uff19\uff19\uff19",
        "cs/0112017",
        "hep-th/9901001v1",
        f"https://{ATTACKER}.io@github.com/kky7/MSSNet",
        f"https://github.com/kky7/MSSNet#https://{ATTACKER}.io/w",
        f"https://github.com/kky7/MSSNet?next={ATTACKER}.io",
    ]
)
MARKDOWN = st.sampled_from(
    [
        f"\\[x\\](//{ATTACKER}.io/w)",
        f"\\<img src=//{ATTACKER}.io/p.png\\>",
        "\\[x\\](javascript:alert(1))",
        "<script>alert(1)</script>",
        "`code`",
        "**bold**",
        "# heading",
        "> quote",
        "1. item",
        "| a | b |",
        "&#91;x&#93;",
        "[^1]",
        "~~x~~",
        "***",
        "$\\href{x}{y}$",
        "{: .x}",
        "@someone",
        "```",
        "\\",
        ")",
        "](",
        "<!-- c -->",
    ]
)
WORDS = st.sampled_from(["deblur", "photo", "sharp edges", "S1", "S2", "S9", "the model"])
HOSTILE = st.lists(
    st.one_of(host_link(), OTHER_LINKS, MARKDOWN, WORDS), min_size=1, max_size=4
).map(lambda parts: " ".join(" ".join(parts).split()))
LINK_FIELDS = st.sampled_from(
    [
        "https://cg.postech.ac.kr/Research/MSSNet/MSSNet.pdf",
        "https://en.wikipedia.org/wiki/Deblurring_(imaging)",
        f"https://{ATTACKER}.io@github.com/kky7/MSSNet",
        f"https://github.com/kky7/MSSNet#https://{ATTACKER}.io/w",
        f"https://a.org/x)[e](//{ATTACKER}.io/w",
        "http://10.66.77.88/p.pdf",
        "https://github.com/kky7/MSSNet/../../evil",
        "https://g\u0456thub.com/kky7/MSSNet",
        "https://github.com/kky7/MSSNet\u200b",
    ]
)


@st.composite
def hostile_bundle(draw: st.DrawFn) -> str:
    text = SEED.read_text()
    text = text.replace("Model: Deblur-MSSNet-RealBlurR", f"Model: Deblur-{draw(HOSTILE)}")
    text = text.replace(
        "Paper: https://cg.postech.ac.kr/Research/MSSNet/MSSNet.pdf", f"Paper: {draw(LINK_FIELDS)}"
    )
    text = text.replace("Model: FeatSharp:", f"Model: {draw(HOSTILE)} FeatSharp:")
    return text.replace("We introduce a novel method", f"{draw(HOSTILE)} We introduce")


@st.composite
def hostile_output(draw: st.DrawFn) -> str:
    prose = HOSTILE
    draft: dict[str, Any] = {
        "answerable": draw(st.booleans()),
        "task": {"statement": draw(prose), "source_ids": ["S1"]},
        "workflow": {
            "input": draw(prose),
            "output": draw(prose),
            "steps": [
                {
                    "source_id": "S1",
                    "input": draw(prose),
                    "action": draw(prose),
                    "output": draw(prose),
                }
            ],
        },
        "references": [
            {"source_id": "S1", "why": draw(prose)},
            {"source_id": "S2", "why": draw(prose)},
        ],
        "note": draw(prose),
    }
    return json.dumps(draft, ensure_ascii=draw(st.booleans()))


def check_rendering(rendered: str, allowed: set[str]) -> None:
    view = reader_view(rendered)
    seen = MARKERS.search(view)
    assert seen is None, f"{seen.group(0)!r} reaches the reader in: {view[:2000]}"
    for url in linkified(rendered):
        assert canonical(url) in allowed, f"linkify-it finds {url!r}"


def check_answer(answer: Answer) -> None:
    allowed = {canonical(link) for link in answer.allowed_links}
    markdown, data = answer.to_markdown(), answer.to_json()
    check_rendering(markdown, allowed)
    check_rendering(data, allowed)
    for text in _strings(json.loads(data)):
        check_rendering(text, allowed)
    tokens = markdown_tokens(markdown, linkify=False)
    assert tokens.images == [] and tokens.html == []
    assert [unquote(h) for h in tokens.hrefs] == [
        link for ref in answer.references for link in (ref.paper_url, ref.github_url) if link
    ]
    linked = markdown_tokens(markdown, linkify=True)
    assert {canonical(unquote(h)) for h in linked.hrefs} <= allowed


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


EMBEDDER = HashEmbedder()


@hsettings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    bundle_text=hostile_bundle(),
    question=HOSTILE,
    outputs=st.lists(st.one_of(hostile_output(), st.just("")), min_size=1, max_size=3),
    invalid_links=st.sampled_from(["error", "drop"]),
    policy=st.sampled_from(["drop", "strict"]),
)
def test_no_foreign_link_reaches_either_rendering(
    settings: Settings,
    bundle_text: str,
    question: str,
    outputs: list[str],
    invalid_links: str,
    policy: str,
) -> None:
    tuned = settings.model_copy(
        update={
            "sources": settings.sources.model_copy(update={"invalid_links": invalid_links}),
            "answer": settings.answer.model_copy(update={"policy": policy, "max_repairs": 2}),
        }
    )
    try:
        bundle = parse_bundle(bundle_text, settings=tuned)
    except BundleParseError as exc:
        # A hostile link field: refused, at its line, and the message holds no live link.
        assert exc.line is not None and "link" in str(exc)
        return
    script = [o for o in outputs if o] or None  # None: the stub writes its own answer
    try:
        answer = explain(
            question,
            bundle=bundle,
            settings=tuned,
            embedder=EMBEDDER,
            backend=StubBackend(script=script or ()),
        )
    except UngroundedAnswerError as exc:
        check_rendering(
            str(exc), {canonical(link) for s in bundle.corpus.sources for link in s.links}
        )
        return
    check_answer(answer)
