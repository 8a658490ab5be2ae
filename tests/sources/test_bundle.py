from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from grounded_answer import (
    BundleParseError,
    Role,
    Settings,
    load_bundle,
    load_settings,
    parse_bundle,
)

from ..support.paths import SEED, SHARED

HEAD = """You are an AI scientist.

A user has asked the following question:
"{question}"

Based on the following recommended models, explain:

1. What task the user is trying to perform.

Use **only the provided models and papers**. Do not refer to outside sources.

"""


def bundle_text(models: str, papers: str = "", question: str = "How do I deblur a photo?") -> str:
    text = HEAD.format(question=question) + "### Recommended AI Models:\n" + models
    if papers:
        text += "\n### Related Papers:\n" + papers
    return text + "\n\nAnswer:\n"


MSSNET = """Model: Deblur-MSSNet-RealBlurR
Paper: https://cg.postech.ac.kr/Research/MSSNet/MSSNet.pdf
GitHub: https://github.com/kky7/MSSNet
"""


def test_seed_bundle_is_parsed_completely() -> None:
    bundle = load_bundle(SEED)
    assert bundle.question.startswith("I tried enlarging a low-quality image")
    assert bundle.question.endswith("even from poor originals?")
    titles = [s.title for s in bundle.corpus.sources]
    assert titles[0] == "Deblur-MSSNet-RealBlurR"
    assert titles[1] == "FeatSharp: Your Vision Model Features, Sharper"
    assert len(titles) == 4
    model = bundle.corpus.sources[0]
    assert model.role is Role.MODEL and model.summary == ""
    assert model.github_url == "https://github.com/kky7/MSSNet"
    papers = bundle.corpus.sources[1:]
    assert all(s.role is Role.PAPER for s in papers)
    assert papers[1].github_url == "https://github.com/ytian73/aigi-vc"
    assert papers[2].paper_url == "http://arxiv.org/pdf/2304.05538v4.pdf"
    assert papers[2].summary.endswith("even when optimal zooming is allowed.")


@pytest.mark.skipif(not (SHARED / "seeds").is_dir(), reason="shared/ not beside the checkout")
def test_the_test_seed_is_the_shared_seed() -> None:
    shared = SHARED / "seeds" / "000_b855da3882446943.txt"
    assert SEED.read_bytes() == shared.read_bytes()


def test_crlf_and_stray_whitespace() -> None:
    text = bundle_text("  Model:   Deblur-MSSNet-RealBlurR  \n\tPaper: https://a.org/p.pdf \t\n")
    bundle = parse_bundle(text.replace("\n", "\r\n"))
    source = bundle.corpus.sources[0]
    assert source.title == "Deblur-MSSNet-RealBlurR"
    assert source.paper_url == "https://a.org/p.pdf"
    assert bundle.question == "How do I deblur a photo?"


def test_entries_without_github_summary_or_paper() -> None:
    papers = (
        "Model: Only code\nGitHub: https://github.com/a/b\n\n"
        "Model: Only paper\nPaper: https://arxiv.org/abs/2101.00001\n"
        "Summary: A summary\nthat continues on a second line.\n"
    )
    bundle = parse_bundle(bundle_text("Model: M\nPaper: https://m.org/m.pdf\n", papers))
    by_title = {s.title: s for s in bundle.corpus.sources}
    assert by_title["Only code"].paper_url is None
    assert by_title["Only code"].summary == ""
    assert by_title["Only paper"].github_url is None
    assert by_title["Only paper"].summary == "A summary that continues on a second line."


def test_same_source_twice_is_deduplicated_by_link() -> None:
    # The same entry twice: the title (up to case and spaces) and the link (up to its
    # spelling) agree, so it is one source and the repeat fills what the first lacked.
    papers = (
        "Model: Paper A\nPaper: https://arxiv.org/abs/2101.00001\n\n"
        "Model: paper  a\nPaper: http://arxiv.org/pdf/2101.00001v2.pdf\n"
        "Summary: filled from the repeat\n"
    )
    bundle = parse_bundle(bundle_text(MSSNET, papers))
    assert [s.title for s in bundle.corpus.sources] == ["Deblur-MSSNet-RealBlurR", "Paper A"]
    assert bundle.corpus.sources[1].summary == "filled from the repeat"
    assert bundle.duplicates == 1


def test_models_sharing_a_repository_are_two_sources() -> None:
    models = (
        "Model: ASR-Wav2Vec2\nPaper: https://arxiv.org/abs/2006.11477\n"
        "GitHub: https://github.com/facebookresearch/fairseq\n\n"
        "Model: ASR-HuBERT\nPaper: https://arxiv.org/abs/2106.07447\n"
        "GitHub: https://github.com/facebookresearch/fairseq\n"
    )
    bundle = parse_bundle(bundle_text(models))
    assert len(bundle.corpus.sources) == 2
    assert bundle.duplicates == 0


def test_no_trailing_answer_several_models_non_english() -> None:
    text = bundle_text(
        MSSNET + "\nModel: SR-SwinIR\nGitHub: https://github.com/JingyunLiang/SwinIR\n",
        question="흐린 사진을 선명하게 만들 수 있나요?",
    )
    text = text.replace("\n\nAnswer:\n", "\n")
    bundle = parse_bundle(text)
    assert bundle.question == "흐린 사진을 선명하게 만들 수 있나요?"
    models = [s for s in bundle.corpus.sources if s.role is Role.MODEL]
    assert [m.title for m in models] == ["Deblur-MSSNet-RealBlurR", "SR-SwinIR"]
    assert len({s.id for s in bundle.corpus.sources}) == 2


def test_every_shipped_bundle_parses() -> None:
    from ..support.paths import BUNDLES

    files = sorted(BUNDLES.parent.glob("*/*.txt"))  # dev/ and test/
    assert len(files) >= 40
    for file in files:
        bundle = load_bundle(file)
        assert bundle.question and bundle.corpus.sources, file


@pytest.mark.parametrize(
    ("text", "marker", "words"),
    [
        (
            "You are an AI scientist.\n\n### Recommended AI Models:\n" + MSSNET,
            "You are",
            "no question",
        ),
        (bundle_text("Model: \nPaper: https://a.org/x\n"), "Model: ", "without a title"),
        (bundle_text("Model: M\nPaper: not-a-url\n"), "Paper: not", "not an http(s) URL"),
        (
            bundle_text("Model: M\nGitHub: ftp://github.com/a/b\n"),
            "GitHub: ftp",
            "not an http(s) URL",
        ),
        (bundle_text("Model: M\nSummary: no link\n"), "Model: M", "no Paper or GitHub link"),
        (HEAD.format(question="q?") + "Answer:\n", "Answer:", "no sources"),
        (HEAD.format(question="q?") + "### Related Papers:\n\n", "### Related", "no sources"),
        (
            HEAD.format(question="").replace('""', "") + "### Related Papers:\n" + MSSNET,
            "A user has asked",
            "no question",
        ),
    ],
)
def test_malformed_bundles_name_file_and_line(
    tmp_path: Path, text: str, marker: str, words: str
) -> None:
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if row.startswith(marker))
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BundleParseError) as caught:
        load_bundle(path)
    assert caught.value.path == str(path)
    assert caught.value.line == line
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_empty_and_non_utf8_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(BundleParseError, match="empty"):
        load_bundle(empty)
    latin = tmp_path / "latin.txt"
    latin.write_bytes(bundle_text(MSSNET, question="Caf\xe9?").encode("latin-1"))
    with pytest.raises(BundleParseError, match="not UTF-8") as caught:
        load_bundle(latin)
    assert caught.value.line == 4
    with pytest.raises(BundleParseError, match="does not exist"):
        load_bundle(tmp_path / "missing.txt")
    with pytest.raises(BundleParseError, match="directory"):
        load_bundle(tmp_path)


# --- issue 13: link fields, repeats, reads and limits ---------------------------------


def settings_with(**sources: object) -> Settings:
    return load_settings(sources=sources)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("Paper: https://a.org/x)[evil](//evil.io/w", "unbalanced"),
        ("Paper: https://evil.io@github.com/a/b", "user info"),
        ("GitHub: https://github.com/a/../../evil", "'..'"),
        ("Paper: http://127.0.0.1/p.pdf", "IP address"),
        ("Paper: http://localhost:8000/p.pdf", "localhost"),
        ("GitHub: https://g\u0456thub.com/a/b", "look-alike"),
        ("GitHub: https://github.com/a/b\u200b", "invisible"),
        ("Paper: https://a.org/" + "p" * 2100, "at most 2000"),
        ("GitHub: https://github.com/a/b#https://evil.io/w", "another link"),
    ],
)
def test_unsafe_link_fields_name_the_line(tmp_path: Path, line: str, why: str) -> None:
    text = bundle_text(MSSNET, f"Model: Paper X\n{line}\n")
    path = tmp_path / "b.txt"
    path.write_text(text, encoding="utf-8")
    number = text.splitlines().index(line) + 1
    with pytest.raises(BundleParseError, match=re.escape(why)) as caught:
        load_bundle(path)
    assert caught.value.line == number and caught.value.path == str(path)
    assert str(caught.value).startswith(f"{path}:{number}: {line.split(':')[0]} link ")


def test_unsafe_link_fields_can_drop_the_source_instead() -> None:
    text = bundle_text(
        MSSNET,
        "Model: Paper X\nPaper: https://evil.io@github.com/a/b\n\n"
        "Model: Paper Y\nPaper: https://arxiv.org/abs/2101.00001\n",
    )
    bundle = parse_bundle(text, settings=settings_with(invalid_links="drop"))
    assert [s.title for s in bundle.corpus.sources] == ["Deblur-MSSNet-RealBlurR", "Paper Y"]
    assert len(bundle.corpus.dropped) == 1
    note = bundle.corpus.dropped[0]
    assert "user info" in note and "'Paper X'" in note and "left out" in note
    line = text.splitlines().index("Paper: https://evil.io@github.com/a/b") + 1
    assert note.startswith(f"line {line}: Paper link")


def test_dropping_every_source_is_an_error() -> None:
    text = bundle_text("Model: M\nPaper: https://localhost/p\n")
    with pytest.raises(BundleParseError, match="no sources left"):
        parse_bundle(text, settings=settings_with(invalid_links="drop"))


def test_models_sharing_a_paper_are_two_sources() -> None:
    models = (
        "Model: ASR-Wav2Vec2-base\nPaper: https://arxiv.org/abs/2006.11477\n\n"
        "Model: ASR-Wav2Vec2-large\nPaper: https://arxiv.org/abs/2006.11477\n"
        "GitHub: https://github.com/facebookresearch/fairseq\n"
    )
    bundle = parse_bundle(bundle_text(models))
    titles = [s.title for s in bundle.corpus.sources]
    assert titles == ["ASR-Wav2Vec2-base", "ASR-Wav2Vec2-large"]
    assert bundle.duplicates == 0
    assert len(bundle.shared_links) == 1 and "both are kept" in bundle.shared_links[0]


def test_a_repeat_with_a_different_link_is_another_source() -> None:
    papers = (
        "Model: Paper A\nPaper: https://arxiv.org/abs/2101.00001\n\n"
        "Model: Paper A\nPaper: https://arxiv.org/abs/2101.00002\n"
    )
    bundle = parse_bundle(bundle_text(MSSNET, papers))
    assert [s.paper_url for s in bundle.corpus.sources[1:]] == [
        "https://arxiv.org/abs/2101.00001",
        "https://arxiv.org/abs/2101.00002",
    ]


def test_too_many_entries_is_an_error_at_the_first_one_past_the_limit() -> None:
    models = "".join(f"Model: M{n}\nGitHub: https://github.com/a/m{n}\n\n" for n in range(4))
    text = bundle_text(models)
    assert len(parse_bundle(text, settings=settings_with(max_bundle_sources=4)).corpus.sources) == 4
    with pytest.raises(BundleParseError, match=r"sources.max_bundle_sources") as caught:
        parse_bundle(text, settings=settings_with(max_bundle_sources=3))
    assert caught.value.line == text.splitlines().index("Model: M3") + 1


def test_the_default_limit_stops_a_five_thousand_model_bundle_early() -> None:
    models = "".join(f"Model: M{n}\nGitHub: https://github.com/a/m{n}\n\n" for n in range(5000))
    with pytest.raises(BundleParseError, match=r"more than 50 entries"):
        parse_bundle(bundle_text(models))


def test_a_bundle_object_past_the_limit_is_refused_per_request(settings: Settings) -> None:
    from grounded_answer import explain

    models = "".join(f"Model: M{n}\nGitHub: https://github.com/a/m{n}\n\n" for n in range(6))
    bundle = parse_bundle(bundle_text(models))
    tight = settings.model_copy(
        update={"sources": settings.sources.model_copy(update={"max_bundle_sources": 5})}
    )
    with pytest.raises(BundleParseError, match="6 sources; the limit is 5"):
        explain(bundle=bundle, settings=tight)


def test_oversized_bundles_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text(
        bundle_text(MSSNET, "Model: P\nPaper: https://a.org/p\nSummary: " + "word " * 400 + "\n")
    )
    with pytest.raises(BundleParseError, match=r"larger than 1,000 bytes.*max_bundle_bytes"):
        load_bundle(path, settings=settings_with(max_bundle_bytes=1000))
    with pytest.raises(BundleParseError, match="max_bundle_bytes"):
        parse_bundle(path.read_text(), settings=settings_with(max_bundle_bytes=1000))


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_only_regular_files_are_read(tmp_path: Path) -> None:
    with pytest.raises(BundleParseError, match="character device, not a regular file"):
        load_bundle("/dev/zero")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # nobody writes to it: reading it would block forever
    with pytest.raises(BundleParseError, match="named pipe"):
        load_bundle(fifo)
    with pytest.raises(BundleParseError, match="is a directory"):
        load_bundle(tmp_path)


def test_a_heading_with_runs_of_spaces_is_still_a_heading() -> None:
    # How fast it parses is tests/test_linearity.py's job (the old pattern was cubic).
    text = bundle_text(MSSNET).replace(
        "### Recommended AI Models:", "#" + " " * 50 + "Recommended" + " " * 50 + "Models :"
    )
    bundle = parse_bundle(text)
    assert bundle.corpus.sources[0].role is Role.MODEL
