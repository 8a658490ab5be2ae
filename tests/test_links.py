from __future__ import annotations

import pytest

from grounded_answer.links import find_links, is_http_url, link_key, scrub_links


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://github.com/kky7/MSSNet", "http://github.com/kky7/MSSNet/"),
        ("https://github.com/kky7/MSSNet", "https://www.github.com/kky7/mssnet.git"),
        ("http://arxiv.org/pdf/2502.16025v1.pdf", "https://arxiv.org/abs/2502.16025"),
        ("http://arxiv.org/pdf/2502.16025v1.pdf", "arxiv.org/pdf/2502.16025v3"),
        ("http://arxiv.org/pdf/2502.16025v1.pdf", "arXiv:2502.16025"),
        ("http://arxiv.org/pdf/2502.16025v1.pdf", "2502.16025v2"),
        ("https://cg.postech.ac.kr/Research/MSSNet/MSSNet.pdf",
         "http://cg.postech.ac.kr/Research/MSSNet/MSSNet.pdf/"),
    ],
)
def test_spellings_of_one_link_share_a_key(a: str, b: str) -> None:
    assert link_key(a) == link_key(b)


@pytest.mark.parametrize(
    "other",
    [
        "https://github.com.evil.io/kky7/MSSNet",
        "https://github.com@evil.io/kky7/MSSNet",
        "https://github.com/kky7/MSSNet-fork",
        "https://github.com/kky7",
        "https://arxiv.org/abs/2502.16026",
        "https://evil.io/github.com/kky7/MSSNet",
    ],
)
def test_look_alikes_do_not_share_a_key(other: str) -> None:
    assert link_key(other) not in {link_key("https://github.com/kky7/MSSNet"),
                                   link_key("http://arxiv.org/pdf/2502.16025v1.pdf")}


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("see https://evil.io/x.", ["https://evil.io/x"]),
        ("[click](https://evil.io/a)", ["https://evil.io/a"]),
        ("<https://evil.io/a>", ["https://evil.io/a"]),
        ("visit www.evil.io today", ["www.evil.io"]),
        ("bare evil.com/path and evil.ai", ["evil.com/path", "evil.ai"]),
        ("code at github.com/some/repo.", ["github.com/some/repo"]),
        ("paper arXiv:2401.12345v2, or 2312.00001", ["arXiv:2401.12345v2", "2312.00001"]),
        ("run train.py with lr 1e-4, version 3.14159, x2.5 scale, e.g. this", []),
        ("", []),
        ("no dot and no colon here", []),
        ("a local server http://localhost:8000/v1 has no dot", ["http://localhost:8000/v1"]),
    ],
)
def test_find_links_in_prose(text: str, found: list[str]) -> None:
    assert [m.text for m in find_links(text)] == found


def test_scrub_keeps_allowed_and_reports_removed() -> None:
    allowed = {link_key("https://github.com/kky7/MSSNet")}
    text, removed = scrub_links("a https://github.com/kky7/MSSNet b https://evil.io c", allowed)
    assert text == "a https://github.com/kky7/MSSNet b [link removed] c"
    assert removed == ["https://evil.io"]


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://a.org/x", True),
        ("http://a.org", True),
        ("ftp://a.org/x", False),
        ("https://localhost", False),
        ("javascript:alert(1)", False),
        ("https://a.org/x y", False),
        ("a.org/x", False),
        ("", False),
        ("http://[::1", False),
    ],
)
def test_is_http_url(url: str, ok: bool) -> None:
    assert is_http_url(url) is ok


def test_cutting_never_splits_a_link() -> None:
    from grounded_answer.links import cut_outside_links

    text = "x" * 20 + " https://github.com/kky7/MSSNet and more"
    for limit in range(20, len(text)):
        cut = cut_outside_links(text, limit)
        assert len(cut) <= limit
        assert "MSSN" not in cut or "https://github.com/kky7/MSSNet" in cut
