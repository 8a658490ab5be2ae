"""What a name or a text says about its task: a small taxonomy of AI tasks.

Platform model names are terse ("Deblur-MSSNet-RealBlurR", "SR-RealESRGAN-x4plus"):
a sentence embedding of the raw name misses the task, so names are split into words
and known prefixes are spelled out before embedding. The evidence plan
(:mod:`grounded_answer.planning.plan`) reads the same table to tell which related papers work on
the recommended models' task, which work on another task of the same kind of data, and
which are about other data altogether, and to order a chain of models by what each one
consumes and produces.

The table is data, not logic: it lives in ``tasks.toml`` beside this module (its header
describes the format) and is read on first use. Each entry names the data a task takes and
gives and a family of close tasks, and its pattern lists the words people use for the task
*and* for the effect they see ("choppy" video, a "muffled" voice), since users describe
what they saw rather than name the task.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ConfigError

__all__ = [
    "TABLE_FILE",
    "Architecture",
    "Modality",
    "TaskHint",
    "architecture_of",
    "expand_name",
    "guess_tasks",
    "name_prefix_words",
    "tasks_in_order",
]

Modality = Literal["image", "video", "audio", "text", "3d", "tabular"]


@dataclass(frozen=True)
class TaskHint:
    """A task a source name or text points to, with its typical input and output."""

    name: str
    input: str
    output: str
    action: str
    takes: Modality = "image"
    gives: Modality = "image"
    family: str = ""

    @property
    def modalities(self) -> frozenset[str]:
        """The kinds of data the task touches."""
        return frozenset((self.takes, self.gives))


@dataclass(frozen=True)
class Architecture:
    """A general-purpose network that task models are built on, and the data it reads."""

    name: str
    reads: frozenset[str]


#: The vocabulary's file, beside this module (see its header for the format).
TABLE_FILE = Path(__file__).resolve().parent / "tasks.toml"


_KINDS = "image|video|audio|text|3d|tabular"
_DATA = rf"^({_KINDS})>({_KINDS})$"


class _TaskEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    pattern: str
    input: str
    output: str
    action: str
    data: str = Field(pattern=_DATA)
    family: str


class _ArchitectureEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    title: str
    reads: frozenset[Modality]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task: tuple[_TaskEntry, ...]
    abbreviations: dict[str, str]
    architecture: tuple[_ArchitectureEntry, ...]


@dataclass(frozen=True)
class _Compiled:
    tasks: tuple[tuple[re.Pattern[str], TaskHint], ...]
    abbreviations: dict[str, str]
    architectures: tuple[tuple[re.Pattern[str], Architecture], ...]


@cache
def _table() -> _Compiled:
    """The vocabulary, read and compiled once per process, on first use."""
    try:
        table = _Table.model_validate(tomllib.loads(TABLE_FILE.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:  # a packaging or editing mistake, not user input
        raise ConfigError(f"task vocabulary {TABLE_FILE}: {exc}") from None
    tasks = []
    for entry in table.task:
        takes, gives = (cast(Modality, kind) for kind in entry.data.split(">"))
        hint = TaskHint(
            entry.name, entry.input, entry.output, entry.action, takes, gives, entry.family
        )
        tasks.append((re.compile(entry.pattern), hint))
    return _Compiled(
        tasks=tuple(tasks),
        abbreviations=dict(table.abbreviations),
        architectures=tuple(
            (re.compile(a.title), Architecture(a.name, frozenset(a.reads)))
            for a in table.architecture
        ),
    )


#: CamelCase parts: "ImageTo3D" -> Image, To, 3D; "HTDemucs" -> HT, Demucs.
_CAMEL = re.compile(r"\d+[A-Z](?![a-z])|[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


@lru_cache(maxsize=4096)
def expand_name(name: str) -> str:
    """Spell a terse model name out as words.

    "Deblur-MSSNet-RealBlurR" becomes "deblurring MSSNet MSS Net RealBlurR Real Blur R".

    CamelCase, digits and separators are split; known task abbreviations are spelled out.
    """
    words: list[str] = []
    for token in re.split(r"[\s_\-/.:]+", name):
        if not token:
            continue
        spelled = _table().abbreviations.get(token.lower())
        if spelled:
            words.append(spelled)
            continue
        words.append(token)
        parts = _CAMEL.findall(token)
        if len(parts) > 1:
            # "VideoCls" -> "Video classification", "ImageTo3D" -> "Image To 3D". Two-letter
            # capitals are left out: "SR" inside "TripoSR" is a product name, not
            # super-resolution (a task prefix is its own token: "SR-RealESRGAN").
            words.extend(
                _table().abbreviations.get(part.lower(), part)
                for part in parts
                if len(part) > 2 or not part.isalpha() or not part.isupper()
            )
    return " ".join(words)


def name_prefix_words(name: str) -> str:
    """What a platform name's first part spells out, when the table knows no task for it.

    Platform names put the task first ("LowLight-ZeroDCE-SICE", "ASR-Whisper-large-v3"),
    and a task the table has never seen is still readable there: "low light", "automatic
    speech recognition". Only a known abbreviation or a compound of several words counts:
    a single word may be the product itself ("Whisper-large"). '' when there is none.
    """
    tokens = [token for token in re.split(r"[\s_\-/.:]+", name) if token]
    if len(tokens) < 2:
        return ""
    first = tokens[0]
    spelled = _table().abbreviations.get(first.lower())
    if spelled:
        return spelled
    parts = _CAMEL.findall(first)
    if sum(part.isalpha() for part in parts) < 2:  # "BLIP2" is a product, "LowLight" words
        return ""
    table = _table().abbreviations
    return " ".join(
        table.get(part.lower(), part if part.isupper() else part.lower()) for part in parts
    )


def guess_tasks(text: str) -> list[TaskHint]:
    """Task hints found in ``text`` in table order, without duplicates."""
    return list(_guess_tasks(text))


@lru_cache(maxsize=4096)
def _guess_tasks(text: str) -> tuple[TaskHint, ...]:
    return tuple(hint for _, hint in _matches(text))


def _matches(text: str) -> list[tuple[int, TaskHint]]:
    """(position, hint) in table order; a match inside a more specific one does not count.

    "video summarization" is not also text summarization, nor "table detection" object
    detection: the table lists the specific task first, and its match claims the span.
    """
    lowered = text.lower()
    claimed: list[tuple[int, int]] = []
    found: list[tuple[int, TaskHint]] = []
    for pattern, hint in _table().tasks:
        for match in pattern.finditer(lowered):
            start, end = match.span()
            if not any(a <= start and end <= b for a, b in claimed):
                claimed.append((start, end))
                found.append((start, hint))
                break
    return found


@lru_cache(maxsize=4096)
def tasks_in_order(text: str) -> tuple[TaskHint, ...]:
    """Task hints found in ``text`` in the order the text names them.

    A summary that lists applications in passing ("from segmentation to detection") names
    its own task later; the title, or the first task a name spells out, is what a source
    is about.
    """
    return tuple(hint for _, hint in sorted(_matches(text), key=lambda item: item[0]))


def architecture_of(title: str) -> Architecture | None:
    """The architecture a paper introduced, when its title is one of the well-known ones."""
    lowered = " ".join(title.lower().split()).rstrip(".")
    return next((arch for pattern, arch in _table().architectures if pattern.search(lowered)), None)
