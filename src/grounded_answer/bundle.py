"""Parsing the platform's bundle prompt format into a question and a :class:`Corpus`.

The platform writes bundles as a chat prompt (see ``corpus/`` and the README): a quoted
question after "A user has asked the following question:", then entries of
``Model:``/``Paper:``/``GitHub:``/``Summary:`` lines under "### Recommended AI Models:"
and "### Related Papers:". Real files vary (CRLF, stray spaces, missing fields,
repeated entries, no trailing ``Answer:``), so the parser is lenient about layout and
strict about content: a missing question, an untitled entry, a link that is not a URL,
or no sources at all is a :class:`BundleParseError` naming the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .corpus import Corpus, Role, Source, make_source_id
from .errors import BundleParseError
from .links import is_http_url, link_key

__all__ = ["Bundle", "load_bundle", "parse_bundle"]

_QUESTION_MARKER = re.compile(
    r"^(?:a user has asked the following question|question)\s*:\s*(?P<rest>.*)$", re.I
)
_SECTION = re.compile(r"^#{1,6}\s*(?P<name>.+?)\s*:?\s*$")
_FIELD = re.compile(r"^(?P<key>[A-Za-z][A-Za-z ]{0,20}?)\s*:\s*(?P<value>.*)$")
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
    duplicates: int = Field(default=0, description="Entries dropped as repeats of an earlier link.")


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


def load_bundle(path: str | Path) -> Bundle:
    """Read and parse a bundle file; errors name the file and line."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise BundleParseError("file does not exist", path=file) from None
    except IsADirectoryError:
        raise BundleParseError("is a directory, expected a bundle text file", path=file) from None
    except OSError as exc:
        raise BundleParseError(f"cannot read ({exc.strerror})", path=file) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BundleParseError(
            f"not UTF-8 text (invalid byte 0x{data[exc.start]:02x})", path=file, line=line
        ) from None
    return parse_bundle(text, path=file)


def parse_bundle(text: str, *, path: str | Path | None = None) -> Bundle:
    """Parse bundle text; ``path`` only labels errors and provenance."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not text.strip():
        raise BundleParseError("file is empty", path=path, line=1)
    question = _find_question(lines, path)
    entries = _find_entries(lines, path)
    if not entries:
        headers = [n for n, line in enumerate(lines, start=1) if _SECTION.match(line.strip())]
        filled = [n for n, line in enumerate(lines, start=1) if line.strip()]
        raise BundleParseError("no sources: expected 'Model:' entries under "
                               "'### Recommended AI Models:' or '### Related Papers:'",
                               path=path, line=(headers or filled)[-1])
    sources, duplicates = _to_sources(entries, path)
    name = Path(path).stem if path is not None else "bundle"
    return Bundle(
        question=question,
        corpus=Corpus(name=name, question=question, sources=tuple(sources)),
        path=None if path is None else str(path),
        duplicates=duplicates,
    )


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
            if _INSTRUCTION_START.match(stripped) or _SECTION.match(stripped):
                break
            parts.append(stripped)
        question = " ".join(parts).strip()
        if len(question) >= 2 and question[0] in "\"“'«" and question[-1] in "\"”'»":
            question = question[1:-1].strip()
        if not question:
            raise BundleParseError("no question: the text after this line is empty", path=path,
                                   line=index + 1)
        return question
    raise BundleParseError(
        "no question: expected a line 'A user has asked the following question:'",
        path=path, line=1,
    )


def _find_entries(lines: list[str], path: str | Path | None) -> list[_Entry]:
    entries: list[_Entry] = []
    role: Role | None = None
    current: _Entry | None = None
    in_summary = False
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        section = _SECTION.match(stripped)
        if section:
            name = section.group("name").lower()
            role = Role.MODEL if "recommend" in name else Role.PAPER
            current, in_summary = None, False
            continue
        if role is None:
            continue
        if not stripped:
            in_summary = False
            continue
        if stripped.lower().rstrip(":") == "answer" and stripped.endswith(":"):
            break
        found = _FIELD.match(stripped)
        key = found.group("key").strip().lower() if found else ""
        if found and key in _TITLE_KEYS:
            current = _Entry(role=role, line=number, title=found.group("value").strip())
            entries.append(current)
            in_summary = False
            if not current.title:
                raise BundleParseError(f"entry without a title ('{found.group('key')}:' is empty)",
                                       path=path, line=number)
            continue
        if current is None:
            raise BundleParseError(
                f"expected an entry starting with 'Model:', got {stripped[:60]!r}",
                path=path, line=number,
            )
        if found and key in _PAPER_KEYS | _CODE_KEYS:
            value = found.group("value").strip().strip("<>")
            if not is_http_url(value):
                raise BundleParseError(f"{found.group('key')} link is not an http(s) URL: "
                                       f"{value[:80]!r}", path=path, line=number)
            if key in _PAPER_KEYS:
                current.paper, current.paper_line = value, number
            else:
                current.github, current.github_line = value, number
            in_summary = False
        elif found and key in _SUMMARY_KEYS:
            current.summary = [found.group("value").strip()]
            in_summary = True
        elif in_summary:
            current.summary.append(stripped)
        elif found:
            current.extra[found.group("key").strip()] = found.group("value").strip()
        else:
            raise BundleParseError(f"unexpected text in entry {current.title[:40]!r}: "
                                   f"{stripped[:60]!r}", path=path, line=number)
    return entries


def _to_sources(entries: list[_Entry], path: str | Path | None) -> tuple[list[Source], int]:
    sources: list[Source] = []
    by_link: dict[str, int] = {}
    taken: set[str] = set()
    duplicates = 0
    for entry in entries:
        if entry.paper is None and entry.github is None:
            raise BundleParseError(f"entry {entry.title[:60]!r} has no Paper or GitHub link",
                                   path=path, line=entry.line)
        # An entry is identified by its paper, or by its code when it has no paper: two
        # models may share a repository (fairseq hosts dozens) and still be two sources.
        key = link_key(entry.paper or entry.github or "")
        earlier = by_link.get(key)
        if earlier is not None:
            # The same source listed twice: keep the first, fill what it lacked.
            duplicates += 1
            sources[earlier] = _merge(sources[earlier], entry)
            continue
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
                str(error["msg"]).removeprefix("Value error, "), path=path, line=entry.line,
                field=".".join(str(p) for p in error["loc"]) or None,
            ) from None
        by_link[key] = len(sources)
        sources.append(source)
    # Recommended models first: the workflow is built from them.
    sources.sort(key=lambda s: s.role is not Role.MODEL)
    return sources, duplicates


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
