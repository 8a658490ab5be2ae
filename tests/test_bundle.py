from __future__ import annotations

from pathlib import Path

import pytest

from grounded_answer import BundleParseError, Role, load_bundle, parse_bundle

from .conftest import SEED, SHARED

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
    text = bundle_text(MSSNET + "\nModel: SR-SwinIR\nGitHub: https://github.com/JingyunLiang/SwinIR\n",
                       question="흐린 사진을 선명하게 만들 수 있나요?")
    text = text.replace("\n\nAnswer:\n", "\n")
    bundle = parse_bundle(text)
    assert bundle.question == "흐린 사진을 선명하게 만들 수 있나요?"
    models = [s for s in bundle.corpus.sources if s.role is Role.MODEL]
    assert [m.title for m in models] == ["Deblur-MSSNet-RealBlurR", "SR-SwinIR"]
    assert len({s.id for s in bundle.corpus.sources}) == 2


def test_every_shipped_bundle_parses() -> None:
    from .conftest import BUNDLES

    files = sorted(BUNDLES.glob("*.txt"))
    assert len(files) >= 12
    for file in files:
        bundle = load_bundle(file)
        assert bundle.question and bundle.corpus.sources, file


@pytest.mark.parametrize(
    ("text", "marker", "words"),
    [
        ("You are an AI scientist.\n\n### Recommended AI Models:\n" + MSSNET,
         "You are", "no question"),
        (bundle_text("Model: \nPaper: https://a.org/x\n"), "Model: ", "without a title"),
        (bundle_text("Model: M\nPaper: not-a-url\n"), "Paper: not", "not an http(s) URL"),
        (bundle_text("Model: M\nGitHub: ftp://github.com/a/b\n"), "GitHub: ftp",
         "not an http(s) URL"),
        (bundle_text("Model: M\nSummary: no link\n"), "Model: M", "no Paper or GitHub link"),
        (HEAD.format(question="q?") + "Answer:\n", "Answer:", "no sources"),
        (HEAD.format(question="q?") + "### Related Papers:\n\n", "### Related", "no sources"),
        (HEAD.format(question="").replace('""', "") + "### Related Papers:\n" + MSSNET,
         "A user has asked", "no question"),
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
