"""Batch runs: one answer file per bundle, resumable, bad bundles reported and skipped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from grounded_answer import ConfigError, Settings, load_settings
from grounded_answer.batch import BatchItem, run_batch

from .integration.chat_server import refused_url
from .support.cli import cli
from .support.fakes import HashEmbedder
from .support.paths import BUNDLES, SEED


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    shutil.copy(SEED, bundles / "a_seed.txt")
    shutil.copy(BUNDLES / "02_deblur_motion_blur.txt", bundles / "b_deblur.txt")
    (bundles / "c_bad.txt").write_text("this is not a bundle\n", encoding="utf-8")
    (bundles / "notes.md").write_text("not a bundle file name\n", encoding="utf-8")
    return bundles


def test_one_file_per_bundle_and_a_bad_bundle_is_reported(
    folder: Path, tmp_path: Path, settings: Settings
) -> None:
    seen: list[BatchItem] = []
    items = run_batch(
        folder, tmp_path / "out", settings=settings, embedder=HashEmbedder(), on_item=seen.append
    )
    assert [(item.bundle, item.status) for item in items] == [
        ("a_seed.txt", "answered"),
        ("b_deblur.txt", "answered"),
        ("c_bad.txt", "failed"),
    ]
    assert sorted(item.bundle for item in seen) == [item.bundle for item in items]
    bad = items[2]
    assert bad.category == "user_input" and f"{folder / 'c_bad.txt'}:1:" in (bad.error or "")
    written = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert written == ["a_seed.json", "b_deblur.json"]  # no partial or temporary file
    answer = json.loads((tmp_path / "out" / "a_seed.json").read_text(encoding="utf-8"))
    assert answer["answerable"] is True and answer["workflow"]["graph"]
    assert items[0].references == len(answer["references"])


def test_a_second_run_skips_what_is_written_and_answers_the_rest(
    folder: Path, tmp_path: Path, settings: Settings
) -> None:
    out = tmp_path / "out"
    run_batch(folder, out, settings=settings, embedder=HashEmbedder())
    kept = (out / "a_seed.json").read_bytes()
    (out / "b_deblur.json").unlink()
    (out / "d_empty.json").touch()  # an empty file is no answer
    shutil.copy(SEED, folder / "d_empty.txt")
    embedder = HashEmbedder()
    items = run_batch(folder, out, settings=settings, embedder=embedder)
    assert {item.bundle: item.status for item in items} == {
        "a_seed.txt": "skipped",
        "b_deblur.txt": "answered",
        "c_bad.txt": "failed",
        "d_empty.txt": "answered",
    }
    assert (out / "a_seed.json").read_bytes() == kept
    assert (out / "d_empty.json").stat().st_size > 0


@pytest.mark.parametrize(
    ("fmt", "suffix", "opening"),
    [
        ("markdown", ".md", "**Question:**"),
        ("html", ".html", "<!doctype html>"),
    ],
)
def test_markdown_and_html_files(
    folder: Path, tmp_path: Path, settings: Settings, fmt: str, suffix: str, opening: str
) -> None:
    items = run_batch(
        folder,
        tmp_path / "out",
        fmt=fmt,  # type: ignore[arg-type]
        settings=settings,
        embedder=HashEmbedder(),
    )
    assert items[0].output == str(tmp_path / "out" / f"a_seed{suffix}")
    assert Path(items[0].output).read_text(encoding="utf-8").startswith(opening)


def test_parallel_jobs_give_the_same_answers(
    folder: Path, tmp_path: Path, settings: Settings
) -> None:
    (folder / "c_bad.txt").unlink()
    for name in ("04_asr_meeting_transcripts.txt", "09_video_frame_interpolation.txt"):
        shutil.copy(BUNDLES / name, folder / name)
    run_batch(folder, tmp_path / "one", jobs=1, settings=settings, embedder=HashEmbedder())
    items = run_batch(
        folder, tmp_path / "three", jobs=3, settings=settings, embedder=HashEmbedder()
    )
    assert all(item.status == "answered" for item in items)
    for item in items:
        name = Path(item.output or "").name
        one = json.loads((tmp_path / "one" / name).read_text(encoding="utf-8"))
        three = json.loads((tmp_path / "three" / name).read_text(encoding="utf-8"))
        assert (one["task"], one["references"]) == (three["task"], three["references"])


def test_a_backend_failure_is_a_runtime_failure_and_the_batch_goes_on(
    folder: Path, tmp_path: Path
) -> None:
    settings = load_settings(
        index={"cache_dir": str(tmp_path / "cache")},
        llm={"backend": "openai", "base_url": refused_url(), "api_key": "x", "max_retries": 0},
    )
    items = run_batch(folder, tmp_path / "out", settings=settings, embedder=HashEmbedder())
    assert [item.category for item in items] == ["runtime", "runtime", "user_input"]
    assert "cannot connect" in (items[0].error or "")
    assert not (tmp_path / "out" / "a_seed.json").exists()


@pytest.mark.parametrize(
    ("setup", "kwargs", "words"),
    [
        (lambda p: None, {}, "no such folder"),
        (lambda p: p.mkdir(), {}, "no bundle files"),
        (lambda p: (p.mkdir(), (p / "x.txt").write_text("x")), {"jobs": 0}, "at least 1"),
        (lambda p: (p.mkdir(), (p / "x.txt").write_text("x")), {"fmt": "pdf"}, "unknown format"),
    ],
)
def test_a_wrong_batch_is_a_config_error(
    tmp_path: Path, settings: Settings, setup: object, kwargs: dict[str, object], words: str
) -> None:
    folder = tmp_path / "in"
    setup(folder)  # type: ignore[operator]
    with pytest.raises(ConfigError, match=words):
        run_batch(folder, tmp_path / "out", settings=settings, embedder=HashEmbedder(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.slow
def test_the_batch_command_table_exit_status_and_resume(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cache = tmp_path / "cache"
    first = cli("explain", "--bundles", str(folder), "--out", str(out), "--jobs", "2", cache=cache)
    assert first.returncode == 1, first.stderr  # one bundle failed
    lines = first.stdout.splitlines()
    assert lines[0].split() == [
        "bundle",
        "status",
        "answerable",
        "refs",
        "seconds",
        "output",
        "/",
        "error",
    ]
    assert any(
        line.startswith("c_bad.txt") and "failed" in line and "user_input" in line for line in lines
    )
    assert "3 bundles: 2 answered, 0 skipped" in first.stdout and "1 failed" in first.stdout
    # Not a terminal: no progress bar, only the failure, on one line.
    assert first.stderr.count("\n") == 1 and "c_bad.txt" in first.stderr
    assert "\r" not in first.stderr
    (folder / "c_bad.txt").unlink()
    second = cli("explain", "--bundles", str(folder), "--out", str(out), cache=cache)
    assert second.returncode == 0, second.stderr
    assert "2 bundles: 0 answered, 2 skipped" in second.stdout
    wrong = cli("explain", "--bundles", str(folder), cache=cache)
    assert wrong.returncode == 2 and "--out DIR" in wrong.stderr


@pytest.mark.slow
def test_explain_format_html(tmp_path: Path) -> None:
    result = cli("explain", "--bundle", str(SEED), "--format", "html", cache=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("<!doctype html>")
    assert "https://github.com/kky7/MSSNet" in result.stdout and "<script" not in result.stdout
