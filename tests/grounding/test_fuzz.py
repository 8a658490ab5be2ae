"""Random input never makes the parsers raise anything but our typed errors."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grounded_answer import BundleParseError, CorpusError, load_corpus, parse_bundle
from grounded_answer.sources.bundle import Bundle

from ..support.paths import SEED

LINES = st.sampled_from(
    [
        "A user has asked the following question:",
        '"How do I deblur?"',
        "",
        "   ",
        "### Recommended AI Models:",
        "### Related Papers:",
        "Model: X",
        "Model:",
        "Paper: https://a.org/p.pdf",
        "Paper: not a url",
        "GitHub: https://github.com/a/b",
        "GitHub:",
        "Summary: words",
        "continued summary",
        "Answer:",
        "Title: T",
        "Key: value",
        "Paper: https://[::1",
        "Paper: http://",
        "\t",
        "\r",
    ]
)
SEED_LINES = SEED.read_text().splitlines()


def check(text: str) -> None:
    try:
        bundle = parse_bundle(text, path="fuzz.txt")
    except BundleParseError as exc:
        assert exc.path == "fuzz.txt" and exc.line is not None and exc.line >= 1
        return
    assert isinstance(bundle, Bundle)
    assert bundle.question.strip() and bundle.corpus.sources


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(LINES, st.text(max_size=40)), max_size=30))
def test_bundle_parser_on_random_lines(lines: list[str]) -> None:
    check("\n".join(lines))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_bundle_parser_on_mutated_seed(data: st.DataObject) -> None:
    lines = list(SEED_LINES)
    for _ in range(data.draw(st.integers(1, 6))):
        action = data.draw(st.sampled_from(["drop", "dup", "replace", "insert"]))
        i = data.draw(st.integers(0, len(lines) - 1)) if lines else 0
        if not lines:
            break
        if action == "drop":
            del lines[i]
        elif action == "dup":
            lines.insert(i, lines[i])
        elif action == "replace":
            lines[i] = data.draw(st.one_of(LINES, st.text(max_size=60)))
        else:
            lines.insert(i, data.draw(st.one_of(LINES, st.text(max_size=60))))
    check("\n".join(lines))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300), st.sampled_from([".yaml", ".jsonl"]))
def test_corpus_loader_on_random_bytes(tmp_path: Path, blob: bytes, suffix: str) -> None:
    path = tmp_path / f"c{suffix}"
    path.write_bytes(blob)
    try:
        load_corpus(path)
    except CorpusError as exc:
        assert exc.path == str(path)
