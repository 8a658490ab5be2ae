from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from grounded_answer import (
    Corpus,
    CorpusError,
    Role,
    Source,
    load_bundle,
    load_corpus,
    load_settings,
)
from grounded_answer.sources import DEFAULT_CORPUS

from ..support.paths import SEED


def source(**fields: object) -> Source:
    base: dict[str, object] = {
        "id": "s1",
        "role": "paper",
        "title": "T",
        "paper_url": "https://a.org/p",
    }
    return Source.model_validate({**base, **fields})


def test_source_needs_an_http_link() -> None:
    with pytest.raises(ValidationError, match="at least one link"):
        source(paper_url=None)
    with pytest.raises(ValidationError, match="not an http"):
        source(paper_url="file:///etc/passwd")
    assert source(paper_url=None, github_url="https://github.com/a/b").links == (
        "https://github.com/a/b",
    )


def test_fingerprint_changes_with_any_content() -> None:
    one = Corpus(sources=(source(),))
    assert one.fingerprint == Corpus(sources=(source(),)).fingerprint
    assert one.fingerprint != Corpus(sources=(source(summary="x"),)).fingerprint
    assert one.fingerprint != Corpus(sources=(source(metadata={"k": 1}),)).fingerprint


def test_memoized_hashes_and_link_keys_follow_model_copy() -> None:
    # Fingerprints and link keys are computed once per object; model_copy is the one way
    # a frozen record changes, and a copy must not inherit the original's values.
    one = source(github_url="https://github.com/a/b")
    corpus = Corpus(sources=(one,))
    before, keys = corpus.fingerprint, one.link_keys
    edited = one.model_copy(update={"summary": "changed", "github_url": "https://github.com/c/d"})
    assert edited.content_hash() != one.content_hash()
    assert edited.link_keys == {"a.org/p", "github.com/c/d"} != keys
    assert corpus.model_copy(update={"sources": (edited,)}).fingerprint != before
    assert corpus.model_copy().fingerprint == before
    assert "fingerprint" not in corpus.model_dump() and corpus == Corpus(sources=(one,))


def test_model_without_summary_gets_a_meaningful_passage() -> None:
    model = source(
        role="model", title="Deblur-MSSNet-RealBlurR", github_url="https://github.com/kky7/MSSNet"
    )
    (head,) = model.passages()
    assert "deblurring" in head.text and "Real Blur" in head.text
    assert head.source_id == "s1" and head.id == "s1#0"


def test_long_summary_is_chunked_with_title_on_every_chunk() -> None:
    summary = " ".join(f"Sentence number {n} says something." for n in range(60))
    passages = source(title="Long", summary=summary).passages(max_words=50)
    assert len(passages) > 3
    assert all(p.text.startswith("Long") for p in passages)
    assert all(len(p.text.split()) <= 60 for p in passages[1:])


def test_default_corpus_is_the_seed_bundle() -> None:
    corpus = load_corpus(DEFAULT_CORPUS)
    seed = load_bundle(SEED)
    assert corpus.question == seed.question
    assert [s.title for s in corpus.sources] == [s.title for s in seed.corpus.sources]
    assert [s.links for s in corpus.sources] == [s.links for s in seed.corpus.sources]
    assert [s.summary for s in corpus.sources] == [s.summary for s in seed.corpus.sources]
    assert corpus.sources[0].role is Role.MODEL


def test_jsonl_corpus(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    rows = [
        {"id": "a", "role": "model", "title": "A", "github_url": "https://github.com/a/a"},
        {"id": "b", "role": "paper", "title": "B", "paper_url": "https://b.org/b"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    corpus = load_corpus(path)
    assert [s.id for s in corpus.sources] == ["a", "b"]
    assert corpus.name == "c"


YAML_HEAD = "sources:\n"
GOOD = "  - id: a\n    role: model\n    title: A\n    github_url: https://github.com/a/a\n"


@pytest.mark.parametrize(
    ("body", "line", "record", "field", "words"),
    [
        (GOOD + GOOD, 6, "a", "id", "duplicate source id"),
        (
            GOOD + "  - id: b\n    role: paper\n    paper_url: https://b.org\n",
            6,
            "b",
            "title",
            "required field is missing",
        ),
        (
            GOOD + "  - id: b\n    role: paper\n    title: B\n    paper_url: b.org\n",
            6,
            "b",
            "paper_url",
            "not an http(s) URL",
        ),
        (
            GOOD + "  - id: b\n    role: paper\n    title: 3\n    paper_url: https://b.org\n",
            6,
            "b",
            "title",
            "valid string",
        ),
        (
            GOOD + "  - id: b\n    role: paper\n    title: B\n    paper_url: https://b.org\n"
            "    year: 2020\n",
            6,
            "b",
            "year",
            "unknown field",
        ),
        (
            GOOD + "  - id: b\n    role: author\n    title: B\n    paper_url: https://b.org\n",
            6,
            "b",
            "role",
            "'model' or 'paper'",
        ),
        (GOOD + "  - just a string\n", 6, 2, None, "must be a mapping"),
    ],
)
def test_bad_records_are_named(
    tmp_path: Path, body: str, line: int, record: object, field: str | None, words: str
) -> None:
    path = tmp_path / "corpus.yaml"
    path.write_text(YAML_HEAD + body)
    with pytest.raises(CorpusError) as caught:
        load_corpus(path)
    error = caught.value
    assert (error.path, error.line, error.record, error.field) == (str(path), line, record, field)
    assert words in str(error)


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("missing.yaml", None, "does not exist"),
        ("empty.yaml", "", "empty"),
        ("list.yaml", "- a\n- b\n", "expected a mapping"),
        ("broken.yaml", "sources: [\n", "invalid YAML"),
        ("extra.yaml", "sourcez: []\nsources: []\n", "unknown top-level key(s): sourcez"),
        ("nosources.yaml", "sources: []\n", "no sources"),
        ("bad.jsonl", '{"id": "a"\n', "invalid JSON"),
    ],
)
def test_bad_files(tmp_path: Path, name: str, content: str | None, words: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(CorpusError, match=words.replace("(", r"\(").replace(")", r"\)")):
        load_corpus(path)


def test_non_utf8_corpus(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"sources:\n  - id: a\n    title: caf\xe9\n")
    with pytest.raises(CorpusError, match="not UTF-8"):
        load_corpus(path)


# --- issue 13: link fields, reads and limits ------------------------------------------


def record(name: str, **links: str) -> str:
    fields = "".join(f"    {key}: {value}\n" for key, value in links.items())
    return f"  - id: {name}\n    role: paper\n    title: {name.upper()}\n{fields}"


@pytest.mark.parametrize(
    ("field", "url", "why"),
    [
        ("paper_url", "https://evil.io@b.org/p", "user info"),
        ("paper_url", "https://b.org/a/../../etc", "'..'"),
        ("github_url", "https://10.0.0.1/repo", "IP address"),
        ("github_url", "https://localhost/repo", "localhost"),
        ("paper_url", "'https://b.org/x)[e](//evil.io)'", "unbalanced"),
        ("github_url", "https://g\u0456thub.com/a/b", "look-alike"),
    ],
)
def test_unsafe_link_fields_name_record_line_and_field(
    tmp_path: Path, field: str, url: str, why: str
) -> None:
    path = tmp_path / "corpus.yaml"
    path.write_text(YAML_HEAD + GOOD + record("b", **{field: url}), encoding="utf-8")
    with pytest.raises(CorpusError, match=why.replace("(", r"\(")) as caught:
        load_corpus(path)
    error = caught.value
    assert (error.line, error.record, error.field) == (6, "b", field)


def test_unsafe_link_fields_can_drop_the_record(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    rows = [
        {"id": "a", "role": "model", "title": "A", "github_url": "https://github.com/a/a"},
        {"id": "b", "role": "paper", "title": "B", "paper_url": "http://127.0.0.1/p"},
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows))
    corpus = load_corpus(path, settings=load_settings(sources={"invalid_links": "drop"}))
    assert [s.id for s in corpus.sources] == ["a"]
    assert corpus.dropped == (
        "line 2, record b: paper_url link points at a bare IP address, "
        "not a host name; the source was left out",
    )


def test_a_wikipedia_link_with_parentheses_is_a_fine_source() -> None:
    url = "https://en.wikipedia.org/wiki/Deblurring_(imaging)"
    assert source(paper_url=url).paper_url == url


def test_too_many_records(tmp_path: Path) -> None:
    path = tmp_path / "corpus.yaml"
    path.write_text(YAML_HEAD + GOOD + record("b", paper_url="https://b.org/p"))
    with pytest.raises(
        CorpusError,
        match=r"2 source records; the limit is 1 "
        r"\(sources.max_corpus_sources\)",
    ):
        load_corpus(path, settings=load_settings(sources={"max_corpus_sources": 1}))


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_corpus_reads_only_bounded_regular_files(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="character device"):
        load_corpus("/dev/zero")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(CorpusError, match="named pipe"):
        load_corpus(fifo)
    big = tmp_path / "big.yaml"
    big.write_text(YAML_HEAD + GOOD * 20)
    with pytest.raises(CorpusError, match="max_corpus_bytes"):
        load_corpus(big, settings=load_settings(sources={"max_corpus_bytes": 100}))


def test_a_corpus_file_is_parsed_once_until_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("sources:\n" + GOOD)
    first = load_corpus(path)
    assert load_corpus(path) is first
    path.write_text("sources:\n" + GOOD.replace("title: A", "title: Another"))
    second = load_corpus(path)
    assert second is not first and second.sources[0].title == "Another"
    # Other limits are another reading of the same file.
    strict = load_settings(sources={"max_corpus_sources": 1})
    assert load_corpus(path, settings=strict) is not second
