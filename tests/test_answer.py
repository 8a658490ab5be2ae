"""Grounding guarantees of the Answer, including property tests over arbitrary model output."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from grounded_answer import Answer, BundleParseError, Settings, UngroundedAnswerError, explain
from grounded_answer.backends.stub import StubBackend
from grounded_answer.grounding.draft import GroundingContext, draft_json_schema, validate_draft
from grounded_answer.grounding.links import find_links, link_key
from grounded_answer.sources.bundle import Bundle, parse_bundle

from .support.drafts import foreign_links, good_draft
from .support.fakes import HashEmbedder
from .support.oracle import canonical, markdown_tokens, reader_view
from .support.paths import SEED

CONTEXT = GroundingContext(
    aliases=frozenset({"S1", "S2"}),
    link_keys=frozenset(
        {
            link_key("https://github.com/kky7/MSSNet"),
            link_key("http://arxiv.org/pdf/2502.16025v1.pdf"),
        }
    ),
)
FIELDS = [
    ("task", "statement"),
    ("note", None),
    ("workflow", "input"),
    ("workflow", "output"),
    ("workflow.steps", "input"),
    ("workflow.steps", "action"),
    ("workflow.steps", "output"),
    ("references", "why"),
]


def with_text(field: tuple[str, str | None], text: str) -> str:
    draft = json.loads(good_draft())
    section, name = field
    if section == "note":
        draft["note"] = text
    elif section == "workflow.steps":
        draft["workflow"]["steps"][0][name] = text
    elif section == "references":
        draft["references"][0][name] = text
    else:
        draft[section][name] = text
    return json.dumps(draft)


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example.com/paper",
        "http://github.com/someone/else",
        "www.evil.io",
        "arxiv.org/abs/1706.03762",
        "arXiv:1706.03762",
        "github.com/foo/bar",
        "evil.com",
    ],
)
def test_foreign_link_rejected_in_every_prose_field(
    field: tuple[str, str | None], link: str
) -> None:
    draft, errors = validate_draft(with_text(field, f"Words {link} more words."), CONTEXT)
    assert draft is None
    assert any("links are not allowed" in e for e in errors), errors


@pytest.mark.parametrize(
    "link",
    [
        "https://github.com/kky7/MSSNet",
        "http://github.com/kky7/mssnet.git/",
        "https://arxiv.org/abs/2502.16025",
        "arxiv.org/pdf/2502.16025v3.pdf",
        "arXiv:2502.16025",
    ],
)
def test_allowed_link_spellings_pass(link: str) -> None:
    draft, errors = validate_draft(with_text(("task", "statement"), f"See {link}."), CONTEXT)
    assert errors == [] and draft is not None


def test_schema_enumerates_the_aliases_and_is_the_callers_own() -> None:
    schema = draft_json_schema(["S1", "S2", "S3"], ["S1"])
    defs = schema["$defs"]
    assert defs["DraftStep"]["properties"]["source_id"]["enum"] == ["S1"]
    assert defs["DraftReference"]["properties"]["source_id"]["enum"] == ["S1", "S2", "S3"]
    assert defs["DraftTask"]["properties"]["source_ids"]["items"]["enum"] == ["S1", "S2", "S3"]
    assert all(
        node["additionalProperties"] is False and node["required"] == list(node["properties"])
        for node in defs.values()
    )
    # Built once per alias list and cached: a caller editing its copy changes nothing.
    defs["DraftStep"]["properties"]["source_id"]["enum"].append("S9")
    schema["$defs"].clear()
    again = draft_json_schema(["S1", "S2", "S3"], ["S1"])
    assert again["$defs"]["DraftStep"]["properties"]["source_id"]["enum"] == ["S1"]
    assert draft_json_schema(["S1", "S2"])["$defs"]["DraftStep"]["properties"]["source_id"][
        "enum"
    ] == ["S1", "S2"]


def test_validation_needs_the_context() -> None:
    draft, errors = validate_draft(good_draft(), None)  # type: ignore[arg-type]
    assert draft is None and any("GroundingContext" in e for e in errors)


def test_answer_cannot_be_built_with_a_foreign_link(
    seed_bundle: Bundle, settings: Settings
) -> None:
    answer = explain(
        bundle=seed_bundle,
        settings=settings,
        embedder=HashEmbedder(),
        backend=StubBackend(script=[good_draft()]),
    )
    data = answer.model_dump()
    data["references"][0]["why"] = "Also see https://evil.io"
    with pytest.raises(ValueError, match="foreign link"):
        Answer.model_validate(data)
    data = answer.model_dump()
    data["references"][0]["github_url"] = "https://github.com/evil/fork"
    with pytest.raises(ValueError, match="foreign link"):
        Answer.model_validate(data)


def test_links_in_summaries_and_question_are_not_allowed(settings: Settings) -> None:
    text = SEED.read_text().replace(
        "We introduce a novel method",
        "Code: https://github.com/attacker/featsharp. We introduce a novel method",
    )
    bundle = parse_bundle(text)
    sneaky = good_draft(
        references=[
            {"source_id": "S1", "why": "Deblurs."},
            {"source_id": "S2", "why": "See https://github.com/attacker/featsharp"},
            {"source_id": "S2", "why": "And https://user-link.example.org/x"},
        ]
    )
    answer = explain(
        "Deblur like https://user-link.example.org/x ?",
        bundle=bundle,
        settings=settings,
        embedder=HashEmbedder(),
        backend=StubBackend(script=[sneaky] * 3),
    )
    assert foreign_links(answer) == []
    rendered = answer.to_json() + answer.to_markdown()
    assert "attacker/featsharp" not in answer.to_markdown()
    assert "https://user-link.example.org" not in rendered
    assert "user-link[.]example[.]org" in answer.question


def test_markdown_escapes_link_syntax_in_untrusted_text(settings: Settings) -> None:
    text = SEED.read_text().replace(
        "Model: Deblur-MSSNet-RealBlurR", "Model: Deblur [click](javascript:alert(1)) <img src=x>"
    )
    answer = explain(
        bundle=parse_bundle(text),
        settings=settings,
        embedder=HashEmbedder(),
        backend=StubBackend(script=[good_draft()]),
    )
    markdown = answer.to_markdown()
    assert not re.search(r"(?<!\\)\[click(?<!\\)\]\(", markdown)
    assert not re.search(r"(?<!\\)<img", markdown)
    assert r"\[click\]" in markdown


# --- property tests: whatever a backend returns, no foreign URL reaches the user -------

URLISH = st.sampled_from(
    [
        "https://evil.example.com/x",
        "http://github.com/evil/repo",
        "github.com/a/b",
        "www.phish.io",
        "arxiv.org/abs/1706.03762",
        "2101.00001v2",
        "evil.ai/p",
        "https://github.com/kky7/MSSNet",
        "S1",
        "S2",
        "S99",
        "[x](https://e.vil.io)",
    ]
)
PROSE = st.lists(st.one_of(st.text(max_size=20), URLISH), max_size=6).map(" ".join)
SOURCE_ID = st.sampled_from(["S1", "S2", "S3", "S4", "S5", "S77", "", "https://evil.io"])
STEP = st.fixed_dictionaries(
    {"source_id": SOURCE_ID, "input": PROSE, "action": PROSE, "output": PROSE}
)
DRAFT = st.fixed_dictionaries(
    {
        "answerable": st.booleans(),
        "task": st.fixed_dictionaries(
            {"statement": PROSE, "source_ids": st.lists(SOURCE_ID, max_size=3)}
        ),
        "workflow": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {"input": PROSE, "steps": st.lists(STEP, max_size=3), "output": PROSE}
            ),
        ),
        "references": st.lists(
            st.fixed_dictionaries({"source_id": SOURCE_ID, "why": PROSE}), max_size=4
        ),
        "note": PROSE,
    }
)
OUTPUT = st.one_of(
    DRAFT.map(json.dumps),
    st.text(max_size=200),
    DRAFT.map(lambda d: "```json\n" + json.dumps(d) + "\n```"),
)


@hsettings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(outputs=st.lists(OUTPUT, min_size=1, max_size=3), policy=st.sampled_from(["drop", "strict"]))
def test_no_foreign_link_whatever_the_backend_says(
    outputs: list[str], policy: str, seed_bundle: Bundle, settings: Settings
) -> None:
    tuned = settings.model_copy(
        update={
            "answer": settings.answer.model_copy(
                update={"policy": policy, "max_repairs": len(outputs) - 1}
            )
        }
    )
    try:
        answer = explain(
            bundle=seed_bundle,
            settings=tuned,
            embedder=EMBEDDER,
            backend=StubBackend(script=list(outputs)),
        )
    except UngroundedAnswerError as exc:
        assert all(m.key in ALLOWED for m in find_links(str(exc)))
        return
    assert foreign_links(answer) == []
    for reference in answer.references:
        assert reference.label in {"S1", "S2", "S3", "S4"}


EMBEDDER = HashEmbedder()
ALLOWED: set[str] = set()


@pytest.fixture(autouse=True)
def _allowed(seed_bundle: Bundle) -> Any:
    ALLOWED.clear()
    ALLOWED.update(k for s in seed_bundle.corpus.sources for k in s.link_keys)


# --- issue 13: the red team's Markdown and link-field attacks, end to end ---------------


def only_library_links(answer: Answer) -> None:
    """markdown-it finds no image or HTML, and links only to the answer's own sources."""
    markdown = answer.to_markdown()
    plain = markdown_tokens(markdown, linkify=False)
    assert plain.images == [] and plain.html == [], (plain.images, plain.html)
    rendered = [
        link for ref in answer.references for link in (ref.paper_url, ref.github_url) if link
    ]
    assert [unquote(href) for href in plain.hrefs] == rendered
    allowed = {canonical(link) for link in answer.allowed_links}
    linked = markdown_tokens(markdown, linkify=True)
    assert {canonical(unquote(href)) for href in linked.hrefs} <= allowed, linked.hrefs


@pytest.mark.parametrize(
    "title",
    [
        r"Deblur \[x\](//evil.io/w)",
        r"Deblur \<img src=//evil.io/p.png\>",
        r"Deblur \\[x\\](https://evil.io/w)",
        "Deblur [x](javascript:alert(1)) <img src=x onerror=alert(1)>",
        "Deblur &#91;x&#93;(//evil.io/w) &lt;b&gt;",
        "Deblur `code` **bold** | table |",
    ],
)
def test_hostile_titles_render_as_text(settings: Settings, title: str) -> None:
    text = SEED.read_text().replace("Model: Deblur-MSSNet-RealBlurR", f"Model: {title}")
    answer = explain(
        bundle=parse_bundle(text),
        settings=settings,
        embedder=HashEmbedder(),
        backend=StubBackend(script=[good_draft()]),
    )
    only_library_links(answer)
    assert "evil.io" not in reader_view(answer.to_markdown())


@pytest.mark.parametrize(
    "question",
    [
        r"Can AI deblur? \[x\](javascript:alert(1))",
        r"Deblur \<img src=//evil.io/p.png\> please",
        "Deblur? [x](<javascript:alert(1)>) ![i](https://evil.io/p.png)",
    ],
)
def test_hostile_questions_render_as_text(
    seed_bundle: Bundle, settings: Settings, question: str
) -> None:
    answer = explain(question, bundle=seed_bundle, settings=settings, embedder=HashEmbedder())
    only_library_links(answer)
    view = reader_view(answer.to_markdown() + answer.to_json())
    assert "javascript:" not in view and "evil.io" not in view


WIKI = "https://en.wikipedia.org/wiki/Deblurring_(imaging)"


def test_a_paper_link_with_parentheses_works_end_to_end(settings: Settings) -> None:
    # It crashed explain with a pydantic traceback: the finder cut the link at "(".
    text = SEED.read_text().replace(
        "Paper: https://cg.postech.ac.kr/Research/MSSNet/MSSNet.pdf", f"Paper: {WIKI}"
    )
    answer = explain(bundle=parse_bundle(text), settings=settings, embedder=HashEmbedder())
    assert answer.references[0].paper_url == WIKI
    assert f"[Paper](<{WIKI}>)" in answer.to_markdown()
    assert WIKI in json.loads(answer.to_json())["allowed_links"]
    only_library_links(answer)


def test_a_dropped_source_is_reported(settings: Settings) -> None:
    text = SEED.read_text().replace(
        "GitHub: https://github.com/kky7/MSSNet",
        "GitHub: https://github.com/kky7/MSSNet\n\n"
        "Model: Evil-Net\nPaper: https://evil.io@github.com/x/y",
    )
    with pytest.raises(BundleParseError, match="user info"):
        parse_bundle(text, settings=settings)
    dropping = settings.model_copy(
        update={"sources": settings.sources.model_copy(update={"invalid_links": "drop"})}
    )
    bundle = parse_bundle(text, settings=dropping)
    answer = explain(bundle=bundle, settings=dropping, embedder=HashEmbedder())
    [note] = answer.validation.sources_dropped
    assert "Evil-Net" in note and "user info" in note
    assert all(ref.title != "Evil-Net" for ref in answer.references)
    only_library_links(answer)


def test_two_models_sharing_a_paper_both_reach_the_answer(settings: Settings) -> None:
    text = SEED.read_text().replace(
        "GitHub: https://github.com/kky7/MSSNet",
        "GitHub: https://github.com/kky7/MSSNet\n\nModel: Deblur-MSSNet-GoPro\n"
        "Paper: https://cg.postech.ac.kr/Research/MSSNet/MSSNet.pdf",
    )
    answer = explain(bundle=parse_bundle(text), settings=settings, embedder=HashEmbedder())
    cited = [ref.title for ref in answer.references]
    assert "Deblur-MSSNet-RealBlurR" in cited and "Deblur-MSSNet-GoPro" in cited


def test_mermaid_labels_keep_parentheses_but_nothing_that_ends_a_label(
    seed_bundle: Bundle, settings: Settings
) -> None:
    answer = explain(bundle=seed_bundle, settings=settings, embedder=HashEmbedder())
    assert answer.workflow is not None
    step = answer.workflow.steps[0].model_copy(
        update={"output": 'separate tracks (vocals, instruments) "x"] | y'}
    )
    flow = answer.workflow.model_copy(update={"steps": [step], "output": step.output})
    mermaid = flow.to_mermaid()
    assert "separate tracks (vocals, instruments)" in mermaid
    for line in mermaid.splitlines()[1:]:
        label = line.split('"')[1]  # every label is quoted once, with nothing to close it
        assert not set(label) & set('"[]|')
        assert line.count('"') == 2
