from __future__ import annotations

import re
import subprocess
import sys

import pytest

from grounded_answer.grounding.links import defang, find_links, is_http_url, link_key, scrub_links

from ..support.paths import REPO


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://github.com/kky7/MSSNet", "http://github.com/kky7/MSSNet/"),
        ("https://github.com/kky7/MSSNet", "https://www.github.com/kky7/mssnet.git"),
        ("http://arxiv.org/pdf/2502.16025v1.pdf", "https://arxiv.org/abs/2502.16025"),
        ("http://arxiv.org/pdf/2502.16025v1.pdf", "arxiv.org/pdf/2502.16025v3"),
        ("http://arxiv.org/pdf/2502.16025v1.pdf", "arXiv:2502.16025"),
        ("http://arxiv.org/pdf/2502.16025v1.pdf", "2502.16025v2"),
        (
            "https://cg.postech.ac.kr/Research/MSSNet/MSSNet.pdf",
            "http://cg.postech.ac.kr/Research/MSSNet/MSSNet.pdf/",
        ),
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
    assert link_key(other) not in {
        link_key("https://github.com/kky7/MSSNet"),
        link_key("http://arxiv.org/pdf/2502.16025v1.pdf"),
    }


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
        ("lr 1e-4, version 3.14159, x2.5 scale, e.g. this, i.e. that, Fig.2", []),
        # .py is Paraguay's TLD: markdown-it's linkifier links "train.py", so it is a host.
        ("run train.py", ["train.py"]),
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
    from grounded_answer.grounding.links import cut_outside_links

    text = "x" * 20 + " https://github.com/kky7/MSSNet and more"
    for limit in range(20, len(text)):
        cut = cut_outside_links(text, limit)
        assert len(cut) <= limit
        assert "MSSN" not in cut or "https://github.com/kky7/MSSNet" in cut


# --- issue 13: what a red team got past the finder -----------------------------------

MSSNET = "https://github.com/kky7/MSSNet"
ALLOWED = {link_key(MSSNET), link_key("http://arxiv.org/pdf/2502.16025v1.pdf")}

# (spelling, what a reader takes it for): every one names a host, an address or a paper.
OBFUSCATED = [
    ("see hxxp://evil.io/x now", "evil.io"),
    ("see //evil.io/x now", "evil.io"),
    ("ftp://evil.io/payload", "evil.io"),
    ("file:///etc/passwd", "file:"),
    ("사이트evil.com에서 받으세요", "evil.com"),
    ("来自evil.com的模型", "evil.com"),
    ("x.evil.io", "evil.io"),
    ("path/evil.io", "evil.io"),
    ("dash-evil.io", "evil.io"),
    ("at@evil.io", "evil.io"),
    ("get it from evil.zip or run.sh", "evil.zip"),
    ("ht\u200btps://evil.io/x", "evil.io"),
    ("ht\u00adtps://evil.io/x", "evil.io"),
    ("evil\u2060.io", "evil.io"),
    ("\uff45\uff56\uff49\uff4c\uff0e\uff49\uff4f", "evil.io"),
    ("evil\uff0eio", "evil.io"),
    ("evil\u3002io", "evil.io"),
    ("\u0435vil.com", "evil.com"),
    ("evil.\u0441\u043em", "evil.com"),
    ("http&#58;//evil.io/x", "evil.io"),
    ("http&colon;&sol;&sol;evil.io", "evil.io"),
    ("https&#x3a;//evil.io", "evil.io"),
    ("write to someone@evil.io", "evil.io"),
    ("mailto:someone@evil.io", "mailto:"),
    ("git@github.com:owner/repo", "github.com"),
    ("10.0.0.1:8080", "10.0.0.1"),
    ("http://192.168.1.1/admin", "192.168.1.1"),
    ("localhost:8000/v1", "localhost"),
    ("javascript:alert(document.cookie)", "javascript:"),
    ("data:text/html;base64,PHNjcmlwdD4=", "data:"),
    ("arXiv:\uff12\uff14\uff10\uff11.\uff10\uff10\uff10\uff10\uff11", "2401.00001"),
    ("see cs/0112017", "cs/0112017"),
    ("hep-th/9901001v2", "hep-th/9901001"),
    ("_evil.io_", "evil.io"),
    ("\\[x\\](//evil.io/w)", "evil.io"),
]


@pytest.mark.parametrize(("text", "target"), OBFUSCATED)
def test_obfuscated_links_are_found(text: str, target: str) -> None:
    found = find_links(text)
    assert found, f"no link found in {text!r}"
    assert any(target in m.plain.lower() or target in m.key for m in found), found
    assert all(m.key not in ALLOWED for m in found)


@pytest.mark.parametrize(
    "text",
    [
        "g\u0456thub.com/kky7/MSSNet",  # Cyrillic i
        "https://github\u200b.com/kky7/MSSNet",  # zero-width space
        "https://github.com/kky7/MSSNet\u00ad",  # trailing soft hyphen
        "\uff48\uff54\uff54\uff50\uff53://github.com/kky7/MSSNet",  # fullwidth scheme
        "https&#58;//github.com/kky7/MSSNet",
    ],
)
def test_an_obfuscated_spelling_of_an_allowed_link_is_not_allowed(text: str) -> None:
    # It looks like the allowed link, but a browser goes elsewhere (or the spelling is a
    # trick): it is never taken for the source's link.
    found = find_links(text)
    assert found and all(m.key not in ALLOWED for m in found)
    assert scrub_links(text, ALLOWED)[1]


@pytest.mark.parametrize(
    "text",
    [
        "https://evil.io@github.com/kky7/MSSNet",
        "https://github.com/kky7/MSSNet#https://evil.io/w",
        "https://github.com/kky7/MSSNet?next=evil.io",
        "https://github.com:8443/kky7/MSSNet",
        "https://user:pass@github.com/kky7/MSSNet",
    ],
)
def test_an_allowed_link_cannot_carry_foreign_text(text: str) -> None:
    found = find_links(text)
    assert [m.text for m in found] == [text]
    assert found[0].key not in ALLOWED


@pytest.mark.parametrize(
    "text",
    [m for m, _ in OBFUSCATED]
    + [
        "https://evil.io/x",
        "www.evil.io",
        "arXiv:2401.12345v2",
        "https://a.org/wiki/X_(y)",
    ],
)
def test_defanged_text_holds_no_link(text: str) -> None:
    assert find_links(defang(text)) == ()


def test_links_with_balanced_parentheses_are_whole() -> None:
    url = "https://en.wikipedia.org/wiki/Deblurring_(imaging)"
    assert [m.text for m in find_links(f"see {url}.")] == [url]
    assert [m.text for m in find_links(f"(see {url})")] == [url]
    assert [m.text for m in find_links(f"[Paper](<{url}>)")] == [url]
    assert [m.text for m in find_links("[t](https://a.org/x)[u](//evil.io)")] == [
        "https://a.org/x",
        "//evil.io",
    ]


def test_markdown_escapes_do_not_hide_an_allowed_link() -> None:
    # The Markdown rendering escapes punctuation; the link is still the allowed one.
    found = find_links("see https://github\\.com/kky7/MSS\\_Net\\.")
    assert [m.plain for m in found] == ["https://github.com/kky7/MSS_Net"]
    assert not found[0].key.startswith("obfuscated:")


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/kky7/MSSNet",
        "http://arxiv.org/pdf/2304.05538v4.pdf",
        "https://en.wikipedia.org/wiki/Deblurring_(imaging)",
        "https://cg.postech.ac.kr/Research/MSSNet/MSSNet.pdf",
        "https://github.com/a/b#readme",
        "https://a.org:8443/x?id=7&lang=en",
        "https://de.wikipedia.org/wiki/Sch%C3%A4rfe",
    ],
)
def test_check_link_accepts_plain_public_links(url: str) -> None:
    from grounded_answer.grounding.links import check_link

    assert check_link(url) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://a.org/x", "not an http(s) URL"),
        ("javascript:alert(1)", "not an http(s) URL"),
        ("https:a.org/x", "not an http(s) URL"),
        ("https://evil.io@github.com/a/b", "user info"),
        ("https://a.org/x/../../admin", "'..'"),
        ("https://a.org/x/%2e%2e/admin", "'..'"),
        ("https://127.0.0.1/x", "IP address"),
        ("http://[::1]/x", "IP address"),
        ("https://localhost/x", "localhost"),
        ("https://intranet/x", "public host name"),
        ("https://a.org/x)[evil](//evil.io/w", "unbalanced"),
        ("https://a.org/wiki/X_(y", "unbalanced"),
        ("https://a.org/" + "x" * 2000, "at most 2000"),
        ("https://a.org/x y", "whitespace"),
        ("https://a.org/x\u200b", "invisible"),
        ("https://g\u0456thub.com/a/b", "look-alike"),
        ("https://a.org/x&#41;", "look-alike, encoded"),
        ("https://a.org/<img>", "'<'"),
        ("https://a.org/x\\y", "'\\\\'"),
        ("https://github.com/a/b#https://evil.io/w", "another link"),
        ("https://a.org/r?next=evil.io", "another link"),
        ("https://a.org/x.", "one link"),
        ("", "empty"),
    ],
)
def test_check_link_rejects_unsafe_link_fields(url: str, why: str) -> None:
    from grounded_answer.grounding.links import check_link

    with pytest.raises(ValueError, match=re.escape(why)):
        check_link(url)


def test_link_tables_match_their_libraries() -> None:
    # The TLD and look-alike tables are generated from tldextract's bundled Public Suffix
    # List snapshot (offline) and Unicode's confusables data; this fails when they drift.
    script = REPO / "scripts" / "update-linkdata"
    result = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_tld_table_is_complete_enough() -> None:
    from grounded_answer.grounding._linkdata import TLDS

    assert {"com", "io", "zip", "sh", "py", "ai", "dev", "app", "mov", "xn--p1ai"} - TLDS <= {
        "xn--p1ai"
    }
    assert "\u0440\u0444" in TLDS and len(TLDS) > 1000


@pytest.mark.parametrize("text", ["写真が出てきました。AIで直せますか", "写真。ioで"])
def test_an_ideographic_full_stop_before_a_word_is_punctuation_not_a_host(text: str) -> None:
    # Under IDNA the last label would be "aiで" (no TLD), and no renderer links it: the
    # question's echo stays as the user wrote it.
    assert find_links(text) == ()
    assert defang(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "例。com",
        "see evil。io",
        "evil.com에서",
        "evil。io/x",
        # Found by the red-team property test: a Latin label, a full stop of any width,
        # and a TLD glued to Hangul or kana read as the host evil.io.
        "\u200bevil\uff0eio에서",
        "evil\uff0eioで",
        "evil。io에서",
    ],
)
def test_a_host_written_with_an_ideographic_dot_or_glued_to_hangul_is_still_caught(
    text: str,
) -> None:
    assert find_links(text)
    assert defang(text) != text
