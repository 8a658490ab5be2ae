"""Source records, corpus files, and the passages retrieval works on.

A :class:`Source` is the unit of trust: only the link fields of source records are
links the library may ever show, so they are checked when a record is made
(:func:`grounded_answer.grounding.links.check_link`: one plain http(s) URL to a public host). A
:class:`Corpus` is a set of sources with unique ids (and optionally an example question);
a bundle parsed from the platform's prompt format is a corpus too (see
:mod:`grounded_answer.sources.bundle`). Corpus files are read as regular files of bounded size
(``sources.max_corpus_bytes``) with a bounded number of records.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator, Mapping
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    model_validator,
)

from .._files import UnreadableFileError, read_limited
from ..config import Settings, SourceSettings, load_settings
from ..errors import CorpusError
from ..grounding.links import check_link, link_key
from .tasks import expand_name, guess_tasks

__all__ = [
    "DEFAULT_CORPUS",
    "Corpus",
    "Passage",
    "Role",
    "Source",
    "load_corpus",
    "make_source_id",
]


#: The packaged default corpus: the seed bundle's four sources and its question.
DEFAULT_CORPUS = Path(__file__).resolve().parent / "data" / "default.yaml"


def _check_url(value: str) -> str:
    try:
        return check_link(value)
    except ValueError as exc:
        raise ValueError(f"link {exc}: {value[:80]!r}") from None


HttpLink = Annotated[str, AfterValidator(_check_url)]


class _Memoized(BaseModel):
    """A frozen model whose derived values (hashes, link keys) are computed once.

    ``model_copy(update=...)`` is the one way a frozen model changes, so it forgets them.
    """

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy, as :meth:`pydantic.BaseModel.model_copy`, without stale derived values."""
        copied = super().model_copy(update=update, deep=deep)
        for klass in type(copied).__mro__:
            for name, attribute in vars(klass).items():
                if isinstance(attribute, cached_property):
                    copied.__dict__.pop(name, None)
        return copied


class Role(StrEnum):
    """Why a source is in the corpus: the platform recommended it, or it is related reading."""

    MODEL = "model"
    PAPER = "paper"


class Source(_Memoized):
    """One model or paper the answer may rest on; its link fields are the allowed links."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$",
        description="Stable id, unique in its corpus; used in caches and in answers.",
    )
    role: Role = Field(description="'model' for a recommended model, 'paper' for related work.")
    title: str = Field(min_length=1, max_length=500, description="Model name or paper title.")
    paper_url: HttpLink | None = Field(default=None, description="Paper link (arXiv, PDF, ...).")
    github_url: HttpLink | None = Field(default=None, description="Code repository link.")
    summary: str = Field(default="", max_length=20_000, description="Abstract or description.")
    metadata: dict[str, JsonValue] = Field(
        default_factory=dict, description="Anything else; never shown as a link."
    )

    @model_validator(mode="after")
    def _needs_a_link(self) -> Self:
        if not self.paper_url and not self.github_url:
            raise ValueError("a source needs at least one link (paper_url or github_url)")
        return self

    @property
    def links(self) -> tuple[str, ...]:
        """The source's links, paper first."""
        return tuple(link for link in (self.paper_url, self.github_url) if link)

    @cached_property
    def link_keys(self) -> frozenset[str]:
        """Normalised forms of :attr:`links` (see :func:`.grounding.links.link_key`)."""
        return frozenset(link_key(link) for link in self.links)

    def content_hash(self) -> str:
        """A hash of everything that affects retrieval or rendering of this source."""
        return self._content_hash

    @cached_property
    def _content_hash(self) -> str:
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def passages(self, max_words: int = 90) -> list[Passage]:
        """Split the source into retrievable passages.

        The first passage is the title with its name spelled out and the repository name,
        so a recommended model without a summary is still found by what its name says.
        Summaries are cut into sentence-aligned chunks of about ``max_words`` words, each
        prefixed with the title so a chunk never loses what it is about.
        """
        head = [self.title]
        expanded = expand_name(self.title)
        if expanded.lower() != self.title.lower():
            head.append(expanded)
        if self.github_url:
            repo = self.github_url.rstrip("/").split("/")[-1].removesuffix(".git")
            head.append(f"Code: {expand_name(repo)}")
        if self.role is Role.MODEL:
            # Spell out what the name implies ("Deblur-" -> image deblurring), so a question
            # in plain words ("the edges look sharp again") still finds a summary-less model.
            head.extend(f"{hint.name}: {hint.action}" for hint in guess_tasks(expanded)[:2])
            head.append("Recommended model")
        else:
            head.append("Related paper")
        texts = [". ".join(part.rstrip(".") for part in head) + "."]
        texts.extend(f"{self.title}: {chunk}" for chunk in _chunk(self.summary, max_words))
        return [
            Passage(id=f"{self.id}#{n}", source_id=self.id, text=text)
            for n, text in enumerate(texts)
        ]


class Passage(BaseModel):
    """A piece of a source's text that is embedded and retrieved on its own."""

    model_config = ConfigDict(frozen=True)

    id: str
    source_id: str
    text: str


def _chunk(text: str, max_words: int) -> Iterator[str]:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if s]
    current: list[str] = []
    count = 0
    for sentence in sentences:
        words = len(sentence.split())
        if current and count + words > max_words:
            yield " ".join(current)
            # One sentence of overlap keeps a claim and its context together.
            current, count = current[-1:], len(current[-1].split())
        current.append(sentence)
        count += words
    if current:
        yield " ".join(current)


class Corpus(_Memoized):
    """A set of sources with unique ids; the only material an answer may cite."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="corpus", description="A label for logs and provenance.")
    question: str | None = Field(default=None, description="Example question for this corpus.")
    sources: tuple[Source, ...] = Field(min_length=1, description="The sources, in file order.")
    dropped: tuple[str, ...] = Field(
        default=(),
        description="Sources left out when the file was read, and why (an unsafe link "
        "field under sources.invalid_links = 'drop').",
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        seen: set[str] = set()
        for source in self.sources:
            if source.id in seen:
                raise ValueError(f"duplicate source id {source.id!r}")
            seen.add(source.id)
        return self

    @cached_property
    def fingerprint(self) -> str:
        """A hash of every source's content: any edit gives a new fingerprint."""
        digest = hashlib.sha256()
        for source in self.sources:
            digest.update(source.content_hash().encode())
        return digest.hexdigest()

    def get(self, source_id: str) -> Source:
        """The source with this id (KeyError if absent)."""
        for source in self.sources:
            if source.id == source_id:
                return source
        raise KeyError(source_id)

    def passages(self) -> list[Passage]:
        """All passages of all sources, in source order."""
        return [passage for source in self.sources for passage in source.passages()]


def make_source_id(title: str, taken: set[str]) -> str:
    """A readable id from a title, stable across runs: "Deblur-MSSNet" -> "deblur-mssnet"."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60].strip("-") or "source"
    candidate, n = slug, 2
    while candidate in taken:
        candidate, n = f"{slug}-{n}", n + 1
    taken.add(candidate)
    return candidate


def load_corpus(path: str | Path, *, settings: Settings | None = None) -> Corpus:
    """Load a corpus from YAML (``sources:`` list, optional ``question``/``name``) or JSONL.

    JSONL holds one source record per line. Errors name the file, the line, the record
    and the field at fault. ``settings.sources`` (default
    :func:`grounded_answer.config.load_settings`) bounds the file's size and number of
    records, and says whether a record with an unsafe link field is an error or is left
    out (and listed in :attr:`Corpus.dropped`).
    """
    file = Path(path)
    options = (settings or load_settings()).sources
    key = _file_key(file, options)
    if key is not None:
        with _CORPORA_LOCK:
            cached = _CORPORA.get(key)
        if cached is not None:
            return cached
    corpus = _read_corpus(file, options)
    if key is not None:
        with _CORPORA_LOCK:
            if len(_CORPORA) >= 32:
                _CORPORA.pop(next(iter(_CORPORA)))
            _CORPORA[key] = corpus
    return corpus


# Parsed corpus files by identity: a warm explain() reads the default corpus's YAML once
# per process, not once per call. A Corpus is frozen, so one object serves every caller.
_CORPORA: dict[tuple[object, ...], Corpus] = {}
_CORPORA_LOCK = threading.Lock()


def _file_key(file: Path, options: SourceSettings) -> tuple[object, ...] | None:
    """The file's identity (path, size, modification time, inode) with the read options."""
    try:
        stat = file.stat()
    except OSError:
        return None  # reading it will raise the error that names the problem
    return (
        str(file.resolve()),
        stat.st_size,
        stat.st_mtime_ns,
        stat.st_ino,
        stat.st_dev,
        options.max_corpus_bytes,
        options.max_corpus_sources,
        options.invalid_links,
    )


def _read_corpus(file: Path, options: SourceSettings) -> Corpus:
    try:
        data = read_limited(
            file,
            options.max_corpus_bytes,
            setting="sources.max_corpus_bytes",
            expected="a .yaml or .jsonl file",
        )
        text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnreadableFileError as exc:
        raise CorpusError(str(exc), path=file) from None
    except UnicodeDecodeError as exc:
        raise CorpusError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=file) from None
    if not text.strip():
        raise CorpusError("file is empty", path=file)
    if file.suffix.lower() == ".jsonl":
        records, lines, header = _read_jsonl(text, file)
    else:
        records, lines, header = _read_yaml(text, file)
    if len(records) > options.max_corpus_sources:
        raise CorpusError(
            f"{len(records):,} source records; the limit is {options.max_corpus_sources:,} "
            "(sources.max_corpus_sources)",
            path=file,
            line=lines[options.max_corpus_sources],
        )
    made = [_make_source(rec, file, lines[i], i, options) for i, rec in enumerate(records)]
    dropped = [item for item in made if isinstance(item, str)]
    sources = [item for item in made if isinstance(item, Source)]
    lines = [lines[i] for i, item in enumerate(made) if isinstance(item, Source)]
    if not sources:
        raise CorpusError(
            "no sources in the file"
            + (
                " (every record has an unsafe link: " + "; ".join(dropped[:3]) + ")"
                if dropped
                else ""
            ),
            path=file,
        )
    seen: dict[str, int] = {}
    for i, source in enumerate(sources):
        if source.id in seen:
            raise CorpusError(
                f"duplicate source id {source.id!r} (first at record {seen[source.id] + 1})",
                path=file,
                line=lines[i],
                record=source.id,
                field="id",
            )
        seen[source.id] = i
    try:
        return Corpus(
            name=str(header.get("name") or file.stem),
            question=header.get("question"),
            sources=tuple(sources),
            dropped=tuple(dropped),
        )
    except ValidationError as exc:
        raise CorpusError(_first_error(exc), path=file) from None


def _read_jsonl(text: str, file: Path) -> tuple[list[Any], list[int | None], dict[str, Any]]:
    records: list[Any] = []
    lines: list[int | None] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise CorpusError(f"invalid JSON ({exc.msg})", path=file, line=number) from None
        lines.append(number)
    return records, lines, {}


def _read_yaml(text: str, file: Path) -> tuple[list[Any], list[int | None], dict[str, Any]]:
    import yaml

    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CorpusError(
            f"invalid YAML ({getattr(exc, 'problem', None) or exc})",
            path=file,
            line=None if mark is None else mark.line + 1,
        ) from None
    if not isinstance(data, Mapping) or "sources" not in data:
        raise CorpusError("expected a mapping with a 'sources' list", path=file)
    unknown = set(data) - {"name", "question", "sources"}
    if unknown:
        raise CorpusError(
            f"unknown top-level key(s): {', '.join(sorted(map(str, unknown)))}", path=file
        )
    question = data.get("question")
    if question is not None and not isinstance(question, str):
        raise CorpusError("must be a string", path=file, field="question")
    records = data["sources"]
    if not isinstance(records, list):
        raise CorpusError("must be a list of source records", path=file, field="sources")
    lines: list[int | None] = [None] * len(records)
    for key_node, value_node in getattr(node, "value", ()):
        if key_node.value == "sources" and isinstance(value_node, yaml.SequenceNode):
            lines = [item.start_mark.line + 1 for item in value_node.value]
    return records, lines, dict(data)


def _make_source(
    record: Any, file: Path, line: int | None, index: int, options: SourceSettings
) -> Source | str:
    """The record's Source, or (``invalid_links = "drop"``) why it was left out."""
    label: str | int = index + 1
    if isinstance(record, Mapping) and isinstance(record.get("id"), str):
        label = record["id"]
    if not isinstance(record, Mapping):
        raise CorpusError("a source record must be a mapping", path=file, line=line, record=label)
    if options.invalid_links == "drop":
        for name in ("paper_url", "github_url"):
            value = record.get(name)
            if isinstance(value, str) and value.strip():
                try:
                    check_link(value.strip())
                except ValueError as exc:
                    where = f"line {line}, " if line is not None else ""
                    return f"{where}record {label}: {name} link {exc}; the source was left out"
    try:
        return Source.model_validate(record)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or None
        raise CorpusError(
            _message(error), path=file, line=line, record=label, field=field
        ) from None


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field is missing"
    return str(error["msg"]).removeprefix("Value error, ")


def _first_error(exc: ValidationError) -> str:
    return _message(exc.errors()[0])
