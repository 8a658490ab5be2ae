"""The command line, run as a user runs it: a subprocess of the installed entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .support.cli import cli
from .support.paths import BUNDLES, SEED


@pytest.mark.slow
def test_search_bundle_json(tmp_path: Path) -> None:
    result = cli("search", "--bundle", str(SEED), "--format", "json", cache=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["question"].startswith("I tried enlarging")
    ranks = [hit["rank"] for hit in data["hits"]]
    assert ranks == list(range(1, len(ranks) + 1)) and len(ranks) == 8
    owners = [hit["source_id"] for hit in data["hits"]]
    # retrieval.max_per_source: 2 a source, until only one source has passages left
    assert max(owners[:7].count(o) for o in owners) <= 2
    assert data["hits"][0]["cosine"] == max(hit["cosine"] for hit in data["hits"])
    assert {"title", "links", "source_id", "text"} <= set(data["hits"][0])


@pytest.mark.slow
@pytest.mark.parametrize(
    "bundle",
    [
        "04_asr_meeting_transcripts.txt",
        "12_document_invoice_extraction.txt",
        "09_video_frame_interpolation.txt",
    ],
)
def test_explain_json_on_other_domains(tmp_path: Path, bundle: str) -> None:
    result = cli("explain", "--bundle", str(BUNDLES / bundle), "--format", "json", cache=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert {"question", "answerable", "task", "workflow", "references"} <= set(data)
    assert data["answerable"] is True
    assert data["workflow"]["steps"] and data["references"]
    assert all(ref["title"] and ref["url"].startswith("http") for ref in data["references"])
    bundle_text = (BUNDLES / bundle).read_text()
    assert all(ref["url"] in bundle_text for ref in data["references"])


@pytest.mark.slow
def test_explain_markdown_default_corpus(tmp_path: Path) -> None:
    result = cli("explain", cache=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "## 1. Task" in result.stdout and "https://github.com/kky7/MSSNet" in result.stdout


def test_malformed_bundle_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("no question here\n")
    for command in ("search", "explain", "index"):
        result = cli(command, "--bundle", str(bad), cache=tmp_path)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert f"{bad}:1:" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["explain", "--bundle", "/nonexistent/b.txt"], {}, "does not exist"),
        (["explain", "--corpus", "/nonexistent/c.yaml"], {}, "does not exist"),
        (["explain", "   ", "--bundle", str(SEED)], {}, "question is empty"),
        (["explain", "--bundle", str(SEED), "--backend", "gpt5"], {}, "unknown backend 'gpt5'"),
        (
            ["explain", "--bundle", str(SEED)],
            {"GROUNDED_ANSWER_RETRIEVAL__K": "many"},
            "retrieval.k",
        ),
        (
            ["explain", "--bundle", str(SEED)],
            {"GROUNDED_ANSWER_LLM__TEMPERATURE": "9"},
            "llm.temperature",
        ),
        (["serve"], {"GROUNDED_ANSWER_SERVE__MAX_QUEUE": "-1"}, "serve.max_queue"),
        (
            ["explain", "--bundle", str(SEED)],
            {"GROUNDED_ANSWER_CONFIG": "/nonexistent.toml"},
            "does not exist",
        ),
    ],
)
def test_bad_input_exit_2(tmp_path: Path, args: list[str], env: dict[str, str], words: str) -> None:
    result = cli(*args, cache=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # explain chooses the embedder (may export it, loading torch) before the cache
def test_bad_corpus_and_cache_exit_2(tmp_path: Path) -> None:
    corpus = tmp_path / "c.yaml"
    corpus.write_text(
        "sources:\n  - id: a\n    role: paper\n    title: A\n"
        "    paper_url: https://a.org\n  - id: a\n    role: paper\n"
        "    title: B\n    paper_url: https://b.org\n"
    )
    result = cli("explain", "q?", "--corpus", str(corpus), cache=tmp_path)
    assert result.returncode == 2
    assert f"{corpus}:6, record a, field 'id': duplicate source id 'a'" in result.stderr
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    result = cli("explain", "--bundle", str(SEED), cache=blocker / "cache")
    assert result.returncode == 2 and "not writable" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # answers up to the backend call: loads the embedding model
def test_runtime_failure_exit_1(tmp_path: Path) -> None:
    env = {
        "GROUNDED_ANSWER_LLM__BACKEND": "openai",
        "GROUNDED_ANSWER_LLM__BASE_URL": "http://127.0.0.1:9/v1",
        "GROUNDED_ANSWER_LLM__MAX_RETRIES": "0",
        "GROUNDED_ANSWER_LLM__TIMEOUT": "2",
    }
    result = cli("explain", "--bundle", str(SEED), cache=tmp_path, env=env)
    assert result.returncode == 1, result.stderr
    assert "cannot connect" in result.stderr and "Traceback" not in result.stderr
    debug = cli("--debug", "explain", "--bundle", str(SEED), cache=tmp_path, env=env)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


@pytest.mark.slow  # embeds the passages with the real model
def test_index_command(tmp_path: Path) -> None:
    result = cli("index", "--bundle", str(SEED), cache=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "4 sources" in result.stdout and "built" in result.stdout
    again = cli("index", "--bundle", str(SEED), cache=tmp_path)
    assert "loaded" in again.stdout


@pytest.mark.slow
def test_int8_backend_indexes_and_answers_with_its_own_vectors(tmp_path: Path) -> None:
    int8 = {"GROUNDED_ANSWER_EMBEDDING__BACKEND": "onnx-int8"}
    built = cli("index", "--bundle", str(SEED), cache=tmp_path, env=int8)
    assert built.returncode == 0, built.stderr
    assert "all-MiniLM-L6-v2@int8" in built.stdout and "built" in built.stdout
    found = cli("search", "--bundle", str(SEED), "--format", "json", cache=tmp_path, env=int8)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["index"] == "loaded"  # the index the build left
    answer = cli("explain", "--bundle", str(SEED), "--format", "json", cache=tmp_path, env=int8)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["provenance"]["embedding_model"].endswith("@int8")
    # auto is the same int8 encoder, so it reuses that index; the exact export keeps its
    # own vectors, so it builds a separate one.
    auto = cli("search", "--bundle", str(SEED), "--format", "json", cache=tmp_path)
    assert json.loads(auto.stdout)["index"] == "loaded"
    exact = cli(
        "search",
        "--bundle",
        str(SEED),
        "--format",
        "json",
        cache=tmp_path,
        env={"GROUNDED_ANSWER_EMBEDDING__BACKEND": "onnx"},
    )
    assert json.loads(exact.stdout)["index"] == "built"


@pytest.mark.slow
def test_a_library_caller_gets_the_fast_path_too(tmp_path: Path) -> None:
    # Nothing ran `grounded-answer index` here: explain() itself prepares the encoder.
    code = (
        "import json, sys; from grounded_answer import explain, load_settings\n"
        "a = explain(bundle=sys.argv[1], settings=load_settings())\n"
        "print(json.dumps([a.provenance.embedding_model, a.provenance.embedding_note, "
        "'torch' in sys.modules]))"
    )
    env = {
        **os.environ,
        "GROUNDED_ANSWER_INDEX__CACHE_DIR": str(tmp_path / "cache"),
        "GROUNDED_ANSWER_EMBEDDING__EXPORT_DIR": str(tmp_path / "exports"),
    }
    first = subprocess.run(
        [sys.executable, "-c", code, str(SEED)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert first.returncode == 0, first.stderr
    assert "preparing the fast query encoder" in first.stderr
    assert "[1/4] exporting" in first.stderr and "[4/4] checking int8" in first.stderr
    model, note, _ = json.loads(first.stdout)
    assert model.endswith("@int8") and note is None
    second = subprocess.run(
        [sys.executable, "-c", code, str(SEED)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert "preparing" not in second.stderr
    model, note, torch_loaded = json.loads(second.stdout)
    assert model.endswith("@int8") and not torch_loaded  # the second call needs no torch


# --- issue 13: unbounded reads and off-topic questions --------------------------------


def run_bounded(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    # A FIFO with no writer used to hang the read: the timeout turns a hang into a failure.
    env = {**os.environ, "GROUNDED_ANSWER_INDEX__CACHE_DIR": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "grounded_answer.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero and mkfifo")
@pytest.mark.parametrize("kind", ["device", "fifo", "directory", "oversized"])
def test_only_bounded_regular_files_are_read(tmp_path: Path, kind: str) -> None:
    target = {
        "device": Path("/dev/zero"),
        "fifo": tmp_path / "fifo",
        "directory": tmp_path / "dir",
        "oversized": tmp_path / "big.txt",
    }[kind]
    words = {
        "device": "character device, not a regular file",
        "fifo": "named pipe",
        "directory": "is a directory",
        "oversized": "sources.max_bundle_bytes",
    }[kind]
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    elif kind == "oversized":
        target.write_bytes(SEED.read_bytes() + b" " * (1 << 20))
    for option in ("--bundle", "--corpus"):
        result = run_bounded("explain", "q?", option, str(target), cache=tmp_path / "cache")
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
        if option == "--bundle" or kind != "oversized":
            assert words in result.stderr, result.stderr


@pytest.mark.slow
def test_an_off_topic_question_gets_a_polite_not_covered_answer(tmp_path: Path) -> None:
    # It used to end in exit 1, "text repeats instructions": "show ... rules" was taken
    # for an injection and the question was then sent (and echoed) word for word.
    result = cli("explain", "Can you show me the rules of chess?", cache=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "do not cover this question" in result.stdout
    assert "rules of chess" in result.stdout
