"""Parsing the platform's bundle prompt format into a question and a :class:`Corpus`.

The platform writes bundles as a chat prompt (docs/inputs.md has an example): a quoted
question after "A user has asked the following question:", then entries of
``Model:``/``Paper:``/``GitHub:``/``Summary:`` lines under "### Recommended AI Models:"
and "### Related Papers:". Real files vary (CRLF, stray spaces, missing fields,
repeated entries, no trailing ``Answer:``), so the parser is lenient about layout and
strict about content: a missing question, an untitled entry, a link field that is not a
safe link (:func:`grounded_answer.grounding.links.check_link`; with ``sources.invalid_links =
"drop"`` the entry is left out and the corpus says so instead), more entries than
``sources.max_bundle_sources``, or no sources at all is a :class:`BundleParseError`
naming the file and line. An entry listed twice (same title, no link that disagrees) is
merged; entries that only share a link are two sources and stay two.

Every line is parsed in time linear in its length (no pattern here backtracks), and
files are read by :func:`grounded_answer._files.read_limited`: regular files only, at
most ``sources.max_bundle_bytes``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._files import UnreadableFileError, read_limited
from ..config import Settings, SourceSettings, load_settings
from ..errors import BundleParseError
from ..grounding.links import check_link, cut_outside_links, link_key
from .corpus import Corpus, Role, Source, make_source_id

__all__ = ["Bundle", "load_bundle", "parse_bundle"]

_QUESTION_MARKER = re.compile(
    r"^(?:a user has asked the following question|question)\s*+:\s*+(?P<rest>.*)$", re.I
)
_HEADING = re.compile(r"#{1,6}")
_KEY = re.compile(r"[A-Za-z][A-Za-z ]{0,20}")
_TITLE_KEYS = {"model", "title", "name", "paper title"}
_PAPER_KEYS = {"paper", "arxiv", "pdf", "paper url", "paper link"}
_CODE_KEYS = {"github", "code", "repo", "repository", "github url"}
_SUMMARY_KEYS = {"summary", "abstract", "description"}
_INSTRUCTION_START = re.compile(r"^(?:based on the following|use \*\*only|### )", re.I)


class Bundle(BaseModel):
    """A platform bundle: the user's question and the only sources an answer may use."""

    model_config = ConfigDict(frozen=True)

    question: str = Field(min_length=1, description="The user's question, as asked.")
    corpus: Corpus = Field(description="The bundle's sources, recommended models first.")
    path: str | None = Field(default=None, description="The file it was read from, if any.")
    duplicates: int = Field(
        default=0, description="Entries merged into an earlier listing of the same entry."
    )
    shared_links: tuple[str, ...] = Field(
        default=(),
        description="Entries kept as separate sources although they share a paper or code "
        "link with an earlier one (two models from one paper), with their lines.",
    )


@dataclass
class _Entry:
    role: Role
    line: int
    title: str = ""
    paper: str | None = None
    paper_line: int = 0
    github: str | None = None
    github_line: int = 0
    summary: list[str] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)
    invalid: str | None = None  # why the entry is left out (sources.invalid_links = "drop")


@dataclass
class _Sources:
    sources: list[Source] = field(default_factory=list)
    duplicates: int = 0
    shared: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def load_bundle(path: str | Path, *, settings: Settings | None = None) -> Bundle:
    """Read and parse a bundle file; errors name the file and line.

    Only a regular file of at most ``settings.sources.max_bundle_bytes`` is read: a
    directory, a FIFO or a device (``/dev/zero``) is a :class:`BundleParseError`.
    """
    file = Path(path)
    settings = settings or load_settings()
    try:
        data = read_limited(
            file,
            settings.sources.max_bundle_bytes,
            setting="sources.max_bundle_bytes",
            expected="a bundle text file",
        )
    except UnreadableFileError as exc:
        raise BundleParseError(str(exc), path=file) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BundleParseError(
            f"not UTF-8 text (invalid byte 0x{data[exc.start]:02x})", path=file, line=line
        ) from None
    return parse_bundle(text, path=file, settings=settings)


def parse_bundle(
    text: str, *, path: str | Path | None = None, settings: Settings | None = None
) -> Bundle:
    """Parse bundle text; ``path`` only labels errors and provenance.

    ``settings.sources`` bounds the text and the number of entries and says what a bad
    link field does (default :func:`grounded_answer.config.load_settings`).
    """
    options = (settings or load_settings()).sources
    if len(text) > options.max_bundle_bytes and (
        len(text.encode("utf-8", "surrogatepass")) > options.max_bundle_bytes
    ):
        raise BundleParseError(
            f"is larger than {options.max_bundle_bytes:,} bytes, the limit "
            "(sources.max_bundle_bytes)",
            path=path,
        )
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not text.strip():
        raise BundleParseError("file is empty", path=path, line=1)
    question = _find_question(lines, path)
    entries = _find_entries(lines, path, options)
    if not entries:
        headers = [n for n, line in enumerate(lines, start=1) if _section(line.strip())]
        filled = [n for n, line in enumerate(lines, start=1) if line.strip()]
        raise BundleParseError(
            "no sources: expected 'Model:' entries under "
            "'### Recommended AI Models:' or '### Related Papers:'",
            path=path,
            line=(headers or filled)[-1],
        )
    found = _to_sources(entries, path)
    if not found.sources:
        raise BundleParseError(
            "no sources left: every entry has an unsafe link (sources.invalid_links = "
            "'drop'): " + "; ".join(found.dropped[:3]),
            path=path,
            line=entries[-1].line,
        )
    name = Path(path).stem if path is not None else "bundle"
    return Bundle(
        question=question,
        corpus=Corpus(
            name=name, question=question, sources=tuple(found.sources), dropped=tuple(found.dropped)
        ),
        path=None if path is None else str(path),
        duplicates=found.duplicates,
        shared_links=tuple(found.shared),
    )


def _section(stripped: str) -> str | None:
    """The name of a Markdown heading line ("### Related Papers:"), else None."""
    heading = _HEADING.match(stripped)
    if not heading:
        return None
    name = stripped[heading.end() :].strip().removesuffix(":").strip()
    return name or None


def _field(stripped: str) -> tuple[str, str] | None:
    """A ``Key: value`` line as (key, value): a short alphabetic key before the first colon."""
    before, colon, value = stripped.partition(":")
    key = before.rstrip()
    if not colon or not _KEY.fullmatch(key):
        return None
    return key, value.strip()


def _find_question(lines: list[str], path: str | Path | None) -> str:
    for index, raw in enumerate(lines):
        match = _QUESTION_MARKER.match(raw.strip())
        if not match:
            continue
        parts = [match.group("rest").strip()] if match.group("rest").strip() else []
        for follow in lines[index + 1 :]:
            stripped = follow.strip()
            if not stripped:
                if parts:
                    break
                continue
            if _INSTRUCTION_START.match(stripped) or _section(stripped):
                break
            parts.append(stripped)
        question = " ".join(parts).strip()
        if len(question) >= 2 and question[0] in "\"“'«" and question[-1] in "\"”'»":
            question = question[1:-1].strip()
        if not question:
            raise BundleParseError(
                "no question: the text after this line is empty", path=path, line=index + 1
            )
        return question
    raise BundleParseError(
        "no question: expected a line 'A user has asked the following question:'",
        path=path,
        line=1,
    )


def _find_entries(
    lines: list[str], path: str | Path | None, options: SourceSettings
) -> list[_Entry]:
    entries: list[_Entry] = []
    role: Role | None = None
    current: _Entry | None = None
    in_summary = False
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        section = _section(stripped)
        if section:
            role = Role.MODEL if "recommend" in section.lower() else Role.PAPER
            current, in_summary = None, False
            continue
        if role is None:
            continue
        if not stripped:
            in_summary = False
            continue
        if stripped.lower().rstrip(":") == "answer" and stripped.endswith(":"):
            break
        found = _field(stripped)
        label, value = found if found else ("", "")
        key = label.lower()
        if found and key in _TITLE_KEYS:
            if len(entries) >= options.max_bundle_sources:
                raise BundleParseError(
                    f"more than {options.max_bundle_sources} entries; the limit is "
                    f"{options.max_bundle_sources} (sources.max_bundle_sources)",
                    path=path,
                    line=number,
                )
            current = _Entry(role=role, line=number, title=value)
            entries.append(current)
            in_summary = False
            if not current.title:
                raise BundleParseError(
                    f"entry without a title ('{label}:' is empty)", path=path, line=number
                )
            continue
        if current is None:
            raise BundleParseError(
                f"expected an entry starting with 'Model:', got {stripped[:60]!r}",
                path=path,
                line=number,
            )
        if found and key in _PAPER_KEYS | _CODE_KEYS:
            value = value.strip("<>")
            try:
                check_link(value)
            except ValueError as exc:
                if options.invalid_links == "error":
                    raise BundleParseError(
                        f"{label} link {exc}: {value[:80]!r}", path=path, line=number
                    ) from None
                current.invalid = f"line {number}: {label} link {exc}"
            if key in _PAPER_KEYS:
                current.paper, current.paper_line = value, number
            else:
                current.github, current.github_line = value, number
            in_summary = False
        elif found and key in _SUMMARY_KEYS:
            current.summary = [value]
            in_summary = True
        elif in_summary:
            current.summary.append(stripped)
        elif found:
            current.extra[label] = value
        else:
            raise BundleParseError(
                f"unexpected text in entry {current.title[:40]!r}: {stripped[:60]!r}",
                path=path,
                line=number,
            )
    return entries


def _to_sources(entries: list[_Entry], path: str | Path | None) -> _Sources:
    found = _Sources()
    by_title: dict[str, int] = {}
    by_link: dict[str, _Entry] = {}
    taken: set[str] = set()
    for entry in entries:
        if entry.paper is None and entry.github is None:
            raise BundleParseError(
                f"entry {entry.title[:60]!r} has no Paper or GitHub link",
                path=path,
                line=entry.line,
            )
        if entry.invalid:
            found.dropped.append(
                f"{entry.invalid} (entry {_quoted(entry.title)}, line "
                f"{entry.line}); the source was left out"
            )
            continue
        # The same entry listed twice (same title, no link that disagrees) is one source:
        # keep the first and fill what it lacked. Two models may share a paper or a
        # repository (fairseq hosts dozens) and still be two sources.
        title = " ".join(entry.title.split()).casefold()
        earlier = by_title.get(title)
        if earlier is not None and _same_entry(found.sources[earlier], entry):
            found.duplicates += 1
            found.sources[earlier] = _merge(found.sources[earlier], entry)
            continue
        links = [link for link in (entry.paper, entry.github) if link]
        others: list[_Entry] = []
        for key in map(link_key, links):
            other = by_link.get(key)
            if other is not None and all(other is not seen for seen in others):
                others.append(other)
        for other in others:
            found.shared.append(
                f"line {entry.line} {_quoted(entry.title)} shares a link "
                f"with line {other.line} {_quoted(other.title)}; both are kept"
            )
        try:
            source = Source(
                id=make_source_id(entry.title, taken),
                role=entry.role,
                title=entry.title,
                paper_url=entry.paper,
                github_url=entry.github,
                summary=" ".join(entry.summary),
                metadata=dict(entry.extra),
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            raise BundleParseError(
                str(error["msg"]).removeprefix("Value error, "),
                path=path,
                line=entry.line,
                field=".".join(str(p) for p in error["loc"]) or None,
            ) from None
        by_title.setdefault(title, len(found.sources))
        for link in links:
            by_link.setdefault(link_key(link), entry)
        found.sources.append(source)
    # Recommended models first: the workflow is built from them.
    found.sources.sort(key=lambda s: s.role is not Role.MODEL)
    return found


def _quoted(title: str) -> str:
    # Not repr(): it would spell an invisible character as an escape, and a link spelled
    # with one would no longer be found (and defanged) in the report that quotes it.
    return f"'{cut_outside_links(' '.join(title.split()), 60)}'"


def _same_entry(source: Source, entry: _Entry) -> bool:
    """True when ``entry`` repeats ``source``: no link of one contradicts the other's."""
    return all(
        not (mine and theirs) or link_key(mine) == link_key(theirs)
        for mine, theirs in ((source.paper_url, entry.paper), (source.github_url, entry.github))
    )


def _merge(source: Source, entry: _Entry) -> Source:
    update: dict[str, object] = {}
    if not source.paper_url and entry.paper:
        update["paper_url"] = entry.paper
    if not source.github_url and entry.github:
        update["github_url"] = entry.github
    if not source.summary and entry.summary:
        update["summary"] = " ".join(entry.summary)
    if entry.role is Role.MODEL:
        update["role"] = Role.MODEL
    return source.model_copy(update=update) if update else source
