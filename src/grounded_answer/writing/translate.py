"""An answer in another language: the offline draft translated line by line, each line proven.

Under a JSON schema small models copy English rather than translate, so translation is one
plain-text call. Each prose slot of the draft becomes one line that starts with an opaque
tag (``[K7]``): the reply is matched to the slots by tag, never by position, so a line the
model drops, merges or renumbers cannot shift every later line onto the slot before it (a
summary translated under the wrong paper misleads as much as a foreign link would).

A line must also keep what cannot be translated: its source ids, and the model and method
names and the numbers of two or more characters it holds ("x4", "2.0", "16x16"). A line that
has none gets its slot's source id as an anchor (``(S2) It is related work on ...``), and a step's
input and output travel as one line joined by ``→``, so no two lines look alike once
translated, and a line whose content was swapped with another's fails the check. A line that
is missing, duplicated, merged, out of place, changed in what it must keep, in the wrong
script, too long, or that breaks a grounding rule stays in English, and the report says
which and why.

Sentences the library writes from a template (why a recommended model is cited) are not
sent at all: they are written in the answer's language from :mod:`.labels`.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from ..grounding.draft import (
    ACTION_CHARS,
    ACTION_SLOT,
    ALIAS_RE,
    IO_SLOT,
    NOTE_SLOT,
    STATEMENT_CHARS,
    TASK_SLOT,
    WHY_CHARS,
    WHY_SLOT,
    AnswerDraft,
    GroundingContext,
    describe_error,
)
from ..grounding.links import defang
from ..planning import EvidencePlan, Relevance
from ..planning.language import in_language
from .guided import task_names
from .labels import labels_for, task_name

__all__ = [
    "Line",
    "TranslationReport",
    "apply_translation",
    "preview_translation",
    "translation_lines",
]

#: Joins a step's input and output in one line; a translator keeps it.
ARROW = "→"
#: Why a line written in another language (often English, copied back) stays English.
NOT_IN_LANGUAGE = "not in the answer's language"
# Tags are a consonant and a digit: no word in any language, no order to guess; never S,
# so a source id in parentheses, "(S1)", is never read as a tag.
_TAG_LETTERS = "BCDFGHJKLMNPQRTVWXZ"
# The brackets and punctuation a model may write around a tag, fullwidth ones included.
_OPEN = "[\\[\u3010\uff3b(\uff08]"
_CLOSE = "[\\]\u3011\uff3d)\uff09]"
_AFTER = "[:\uff1a.\uff0e\u3001]"
_TAG = re.compile(rf"{_OPEN}\s*([B-DF-HJ-NP-RTV-XZ][0-9])\s*{_CLOSE}")
_LEADING_TAG = re.compile(rf"^\s*(?:[-*\u2022]\s*)?{_TAG.pattern}\s*{_AFTER}?\s*")
# What a translation must keep: numbers, and names with a capital inside or a digit
# ("MSSNet", "ViT", "x4", "DeblurGANv2"), whole with their hyphens ("Deblur-MSSNet-GoPro").
_ANOTHER = "another line's text"
#: Why a line that is whole and its own stays English when its slot cannot hold it.
TOO_LONG = "too long for its slot"
_LIMITS = {
    "task": STATEMENT_CHARS,
    "note": STATEMENT_CHARS,
    "why": WHY_CHARS,
    "action": ACTION_CHARS,
}
# A sentence ends at a full stop (Latin or ideographic), ! or ?, and what closes it.
_SENTENCE = re.compile(
    r"(?:[^.!?\u3002\uff01\uff1f]|[.!?](?!\s|$))*"  # a "." inside "v1.5" or "e.g" goes on
    r"(?:[.!?]+(?=\s|$)|[\u3002\uff01\uff1f]+)[\"')\]\u300d]*\s*"
)
_KEPT = re.compile(r"(?<![\w-])(?=[\w-]*(?:\d|[a-z][A-Z]|[A-Z]{2}))[A-Za-z0-9][\w.-]*[\w]")


@dataclass(frozen=True)
class Line:
    """One line sent for translation, and what its translation must keep."""

    slot: str
    tag: str
    text: str
    #: Source ids the line holds; its translation must hold exactly these.
    aliases: frozenset[str]
    #: Names and numbers its translation must hold.
    kept: tuple[str, ...]
    #: The source id added as an anchor, taken out of the translation again.
    anchor: str | None = None

    @property
    def sent(self) -> str:
        """The line as the model sees it."""
        return f"[{self.tag}] {self.text}"


class TranslationReport(BaseModel):
    """What happened to each line of a translation."""

    translated: list[str] = Field(default_factory=list, description="Slots translated.")
    native: list[str] = Field(
        default_factory=list,
        description="Slots written in the answer's language from the "
        "library's own templates, without the model.",
    )
    kept: list[str] = Field(
        default_factory=list, description="'slot: why' for each slot left in English."
    )
    misaligned: int = Field(
        default=0,
        description="Lines the reply had in the wrong place: missing tags not "
        "counted, but duplicated, merged, out-of-place lines and lines that lost or gained "
        "what they must keep (a swapped line).",
    )

    @property
    def untranslated(self) -> list[str]:
        """The slots left in English."""
        return [entry.split(":", 1)[0] for entry in self.kept]

    @property
    def wrong_language(self) -> bool:
        """Whether the model answered every line, and every line in another language.

        The 1.5B model sometimes copies a whole Korean translation request back in English
        (one answer of 35 on the non-English dev bundles, one of 3 on test): worth one
        more ask, unlike a reply that lost names (asking again changes nothing there).
        """
        return (
            not self.translated
            and bool(self.kept)
            and all(entry.endswith(f": {NOT_IN_LANGUAGE}") for entry in self.kept)
        )


def translation_lines(
    draft: AnswerDraft, plan: EvidencePlan | None = None, language: str = ""
) -> list[Line]:
    """The lines to translate, in the order a reader meets them.

    Slots the library can write in ``language`` from its own templates (see
    :func:`native_slots`) are left out.
    """
    native = set(native_slots(draft, plan, language))
    lines: list[tuple[str, str, str | None]] = [("task", draft.task.statement, None)]
    for n, step in enumerate(draft.workflow.steps if draft.workflow else []):
        lines.append((f"steps[{n}].action", step.action, step.source_id))
        lines.append((f"steps[{n}].io", f"{step.input} {ARROW} {step.output}", step.source_id))
    lines += [
        (f"why[{n}]", ref.why, ref.source_id)
        for n, ref in enumerate(draft.references)
        if f"why[{n}]" not in native
    ]
    if draft.note:
        lines.append(("note", draft.note, None))
    tags = _tags(len(lines), "\n".join(text for _, text, _ in lines))
    made = []
    for (slot, text, owner), tag in zip(lines, tags, strict=True):
        aliases = frozenset(m.group(0) for m in ALIAS_RE.finditer(text))
        anchor = owner if owner and not aliases else None
        if anchor:
            text, aliases = f"({anchor}) {text}", frozenset({anchor})
        made.append(
            Line(
                slot=slot,
                tag=tag,
                text=text,
                aliases=aliases,
                kept=tuple(dict.fromkeys(_KEPT.findall(text))),
                anchor=anchor,
            )
        )
    return made


def native_slots(draft: AnswerDraft, plan: EvidencePlan | None, language: str) -> dict[str, str]:
    """Slots written in ``language`` from the library's templates, without a model.

    Why a recommended model is cited is a template ("Recommended model for {task}; it runs
    step {step} of the workflow."): written from the label table and the task's name in
    that language, it never depends on a model's translation.
    """
    labels = labels_for(language)
    if plan is None or labels is None or labels.language == "en":
        return {}
    step_of = {}
    for n, step in enumerate(plan.steps, start=1):
        for label in (step.label, *step.alternatives):
            step_of[label] = (n, step.task, label != step.label)
    native = {}
    for n, ref in enumerate(draft.references):
        planned = next((s for s in plan.sources if s.label == ref.source_id), None)
        if (
            planned is None
            or planned.relevance is not Relevance.RECOMMENDED
            or ref.source_id not in step_of
        ):
            continue
        number, task, alternative = step_of[ref.source_id]
        name = task_name(task, language) if task else None
        sentence = (
            labels.recommended_why.format(task=name, step=number)
            if name
            else labels.recommended_why_plain.format(step=number)
        )
        native[f"why[{n}]"] = sentence + (f" {labels.alternative_step}" if alternative else "")
    return native


def apply_translation(
    draft: AnswerDraft,
    reply: str,
    lines: Sequence[Line],
    grounding: GroundingContext,
    language: str,
    plan: EvidencePlan | None = None,
) -> tuple[AnswerDraft, TranslationReport]:
    """``draft`` with each sent line's slot replaced by its proven translation.

    A translated task statement that no longer names the plan's task in English gets the
    English name after it, in parentheses: the term a reader looks up, and the name a
    rewrite must keep too.
    """
    report = TranslationReport()
    found, problems = _read_reply(reply, lines)
    report.misaligned = sum(why != "missing from the reply" for why in problems.values())
    data = draft.model_dump()
    for slot, sentence in native_slots(draft, plan, language).items():
        if _set(data, slot, sentence, grounding) is None:
            report.native.append(slot)
    terms = _terms(draft, plan)
    for line in lines:
        if line.tag in problems:
            report.kept.append(f"{line.slot}: {problems[line.tag]}")
            continue
        value, why = _check(line, found[line.tag], language)
        if value is None:
            report.misaligned += why.endswith(_ANOTHER)
            report.kept.append(f"{line.slot}: {why}")
            continue
        refused = _put(data, line.slot, value, terms, grounding)
        if refused is None:
            report.translated.append(line.slot)
        else:
            report.kept.append(f"{line.slot}: {refused}")
    _chain(draft, data)
    try:
        return AnswerDraft.model_validate(data, context=grounding), report
    except ValidationError:
        # Each slot passed alone; together they do not: the draft stays English, reported.
        report.kept = [f"{line.slot}: the lines together broke a rule" for line in lines]
        report.translated, report.native = [], []
        return draft, report


def _chain(draft: AnswerDraft, data: dict[str, Any]) -> None:
    """What one step gives, the next takes: one translation of it, and the ends follow."""
    if not data["workflow"]:
        return
    steps = data["workflow"]["steps"]
    for k in range(1, len(steps)):
        if draft.workflow and draft.workflow.steps[k].input == draft.workflow.steps[k - 1].output:
            steps[k]["input"] = steps[k - 1]["output"]
    data["workflow"]["input"] = steps[0]["input"]
    data["workflow"]["output"] = steps[-1]["output"]


def preview_translation(
    draft: AnswerDraft,
    partial: str,
    lines: Sequence[Line],
    grounding: GroundingContext,
    language: str,
    plan: EvidencePlan | None = None,
) -> tuple[AnswerDraft, set[str]]:
    """What a reply still being written already proves: the draft so far and its slots.

    Only whole lines count (up to the last line break), each checked on its own: its tag,
    its anchors, its script and the slot's checks. Whether a line is duplicated or out of
    place is known only from the whole reply (:func:`apply_translation`), which may still
    leave one of these slots in English.
    """
    whole = partial[: partial.rfind("\n") + 1]
    found, problems = _read_reply(whole, lines)
    terms = _terms(draft, plan)
    data = draft.model_dump()
    decided: set[str] = set()
    for slot, sentence in native_slots(draft, plan, language).items():
        if _set(data, slot, sentence, grounding) is None:
            decided.add(slot)
    for line in lines:
        if (
            line.tag not in found
            or problems.get(line.tag, "missing from the reply") != "missing from the reply"
        ):
            continue
        value, _ = _check(line, found[line.tag], language)
        if value is not None and _put(data, line.slot, value, terms, grounding) is None:
            decided.add(line.slot)
    _chain(draft, data)
    try:
        return AnswerDraft.model_validate(data, context=grounding), decided
    except ValidationError:
        return draft, set()


def _tags(count: int, seed: str) -> list[str]:
    """``count`` distinct tags, the same for the same lines (so a cached reply matches)."""
    # Never a tag the text itself holds ("(T5)" in a quoted summary would read as a merge).
    taken = set(_TAG.findall(seed))
    every = [
        tag
        for tag in (f"{letter}{digit}" for letter in _TAG_LETTERS for digit in range(10))
        if tag not in taken
    ]
    if count > len(every):
        raise ValueError(f"{count} lines; at most {len(every)} can be tagged")
    rng = random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))
    return rng.sample(every, count)


def _read_reply(reply: str, lines: Sequence[Line]) -> tuple[dict[str, str], dict[str, str]]:
    """Each tag's text, and the tags that cannot be trusted, with why."""
    sent = {line.tag: n for n, line in enumerate(lines)}
    texts: dict[str, list[str]] = {}
    order: list[str] = []
    problems: dict[str, str] = {}
    current: str | None = None
    for raw in reply.splitlines():
        if not raw.strip():
            current = None
            continue
        head = _LEADING_TAG.match(raw)
        body = raw[head.end() :] if head else raw
        inner = [m.group(1) for m in _TAG.finditer(body) if m.group(1) in sent]
        if head is None:
            if current is not None and not inner:
                texts[current].append(body.strip())  # a long line wrapped by the model
            for tag in inner:
                problems.setdefault(tag, "merged with another line")
            continue
        tag = head.group(1)
        if tag not in sent:
            current = None  # a tag the model made up: its text belongs to no slot
            continue
        if inner:
            # Two lines in one: neither can be told from the other.
            problems.setdefault(tag, "merged with another line")
            for other in inner:
                problems.setdefault(other, "merged with another line")
        if tag in texts:
            problems[tag] = "duplicated in the reply"
        texts.setdefault(tag, []).append(body.strip())
        order.append(tag)
        current = tag
    for line in lines:
        if line.tag not in texts:
            problems.setdefault(line.tag, "missing from the reply")
    placed = _in_order([sent[tag] for tag in dict.fromkeys(order)])
    for tag in dict.fromkeys(order):
        if sent[tag] not in placed:
            problems.setdefault(tag, "out of place in the reply")
    return {tag: " ".join(parts) for tag, parts in texts.items()}, problems


def _in_order(positions: list[int]) -> set[int]:
    """The longest run of positions already in increasing order (the rest moved)."""
    best: list[list[int]] = []
    for position in positions:
        longest: list[int] = []
        for chain in best:
            if chain[-1] < position and len(chain) > len(longest):
                longest = chain
        best.append([*longest, position])
    if not best:
        return set()
    run: list[int] = max(best, key=len)
    return set(run)


def _still_there(name: str, folded: str) -> bool:
    """Whether a translation (casefolded) keeps ``name``, allowing its English grammar.

    A plural or an English word hyphenated onto a name is grammar a translation rewrites:
    "CNNs" kept as "CNN", "BERT-style" as "estilo BERT", "0.25-degree" as "0,25 度" keeps
    what identifies the source (seen on the non-English dev bundles: 5 lines stayed English).
    """
    head = re.sub(r"(?<=[A-Z])s$|-[a-z]+$", "", name)
    return any(
        variant.casefold() in folded
        for variant in {name, head, head.replace(".", ","), head.replace(".", "\uff0e")}
        if variant
    )


def _check(line: Line, text: str, language: str) -> tuple[str | None, str]:
    """The translation of ``line`` ready for its slot, or None and why it cannot be used."""
    aliases = frozenset(m.group(0) for m in ALIAS_RE.finditer(text))
    if aliases != line.aliases:
        return None, (
            f"holds {', '.join(sorted(aliases)) or 'no source id'} instead of "
            f"{', '.join(sorted(line.aliases)) or 'none'}: {_ANOTHER}"
        )
    folded = text.casefold()  # "3D" keeps "3d"; case never told two lines apart
    missing = [name for name in line.kept if not _still_there(name, folded)]
    if missing:
        return None, f"lost {', '.join(missing[:3])}, which it must keep"
    if line.anchor:
        text = re.sub(
            rf"{_OPEN}\s*{line.anchor}\s*{_CLOSE}\s*{_AFTER}?|\b{line.anchor}\b", "", text, count=1
        )
    text = " ".join(text.split())
    if line.slot.endswith(".io") and text.count(ARROW) != 1:
        return None, f"lost the {ARROW} between input and output"
    parts = [text] if not line.slot.endswith(".io") else text.split(ARROW)
    if not all(part.strip() for part in parts):
        return None, "empty"
    # Names and source ids stay in Latin letters: the script is judged on the rest.
    bare = [ALIAS_RE.sub("", _KEPT.sub("", part)) for part in parts]
    if not all(in_language(part, language) for part in bare):
        return None, NOT_IN_LANGUAGE
    return text, ""


def _terms(draft: AnswerDraft, plan: EvidencePlan | None) -> list[str]:
    """The plan's task names the English statement uses, in its order."""
    if plan is None:
        return []
    return sorted(task_names(draft, plan), key=draft.task.statement.lower().find)


def _put(
    data: dict[str, Any], slot: str, value: str, terms: list[str], grounding: GroundingContext
) -> str | None:
    """Put a checked translation into its slot; None when put, else why not.

    A task statement that lost the task's English name gets it after it, in parentheses,
    when it still fits. A line that came back longer than its slot allows (French and
    Italian run a fifth longer than English) keeps its whole sentences that fit, as the
    English draft's quotes do.
    """
    named = slot != "task" or not terms or any(t in value.lower() for t in terms)
    if not named and _set(data, "task", f"{value} ({', '.join(terms)})", grounding) is None:
        return None
    why = _set(data, slot, value, grounding)
    if why == TOO_LONG:
        # A step's input and output are one phrase each: only prose slots are cut.
        kind = slot.rsplit(".", 1)[-1].split("[", 1)[0]
        fitted = _whole_sentences(value, _LIMITS.get(kind, 0))
        if fitted and _set(data, slot, fitted, grounding) is None:
            return None
    return why


def _whole_sentences(text: str, limit: int) -> str:
    """The longest run of ``text``'s first whole sentences that fits ``limit``; '' if none."""
    kept = ""
    for match in _SENTENCE.finditer(text):
        if match.end() > limit:
            break
        kept = text[: match.end()].rstrip()
    return kept


def _set(data: dict[str, Any], slot: str, value: str, grounding: GroundingContext) -> str | None:
    """Put ``value`` into ``slot`` of the draft data if it passes the slot's checks.

    Returns None when it was put, else why not (``TOO_LONG``, or the check it failed).
    """
    try:
        if slot == "task":
            data["task"]["statement"] = TASK_SLOT.validate_python(value, context=grounding)
        elif slot == "note":
            data["note"] = NOTE_SLOT.validate_python(value, context=grounding)
        elif slot.startswith("why"):
            data["references"][int(slot[4:-1])]["why"] = WHY_SLOT.validate_python(
                value, context=grounding
            )
        else:
            where, key = slot.split(".")
            step = data["workflow"]["steps"][int(where[6:-1])]
            if key == "io":
                given, made = (
                    IO_SLOT.validate_python(part.strip(), context=grounding)
                    for part in value.split(ARROW)
                )
                step.update(input=given, output=made)
            else:
                step[key] = ACTION_SLOT.validate_python(value, context=grounding)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if any(error["type"] in ("string_too_long", "too_long") for error in errors):
            return TOO_LONG
        return defang(describe_error(errors[0]).removeprefix("answer: "))
    return None
