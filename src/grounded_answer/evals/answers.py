"""Answer evaluation over a folder of labelled bundles.

``labels.json`` beside the bundles maps each bundle file name to::

    {"answerable": true,
     "task_keywords": ["deblur", "sharp"],      # the task statement names one of these
     "relevant": ["https://...", ...],          # a link of each source a good answer cites
     "optional": ["https://...", ...]}          # may be cited or not, without penalty

Sources are matched to labels by link (normalised), so labels survive id changes.
Citation precision counts every cited source that is neither relevant nor optional as
wrong; recall counts relevant sources the answer left out. Foreign links are counted in
the Answer's JSON and Markdown: any other number than zero is a bug.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..backends.base import Backend
from ..config import Settings
from ..embeddings import Embedder
from ..errors import ConfigError, GroundedAnswerError
from ..grounding.links import find_links, link_key
from ..pipeline import explain
from ..sources.bundle import load_bundle
from ..sources.corpus import Role

__all__ = [
    "BundleLabel",
    "BundleScore",
    "evaluate_answers",
    "format_table",
    "splits_of",
]


class BundleLabel(BaseModel):
    """What a good answer to one bundle looks like."""

    model_config = ConfigDict(extra="ignore")

    answerable: bool
    task_keywords: list[str] = Field(default_factory=list)
    relevant: list[str] = Field(default_factory=list)
    optional: list[str] = Field(default_factory=list)


class BundleScore(BaseModel):
    """The measurements of one answer."""

    bundle: str
    parsed: bool
    error: str = ""
    sections_complete: bool = False
    foreign_links: int = 0
    recall: float | None = None
    precision: float | None = None
    answerable_correct: bool = False
    task_named: bool | None = None
    models_cited: bool | None = None
    in_language: bool | None = Field(
        default=None,
        description="For a question not in English: the task statement is "
        "written in the question's language.",
    )
    models_in_workflow: bool | None = Field(
        default=None,
        description="Every recommended model runs a step or is named as a step's alternative.",
    )
    repairs: int = 0
    valid_first_try: bool = False
    links_caught: int = Field(default=0, description="Foreign-link errors found in attempts.")
    completion_tokens: int | None = None
    backend_seconds: float = 0.0
    prompt_tokens: int | None = None
    judge_seconds: float | None = Field(
        default=None, description="Seconds the language model spent reading the sources."
    )
    judgements: int = Field(default=0, description="Sources the model read and judged.")
    translated: int | None = Field(
        default=None, description="For an answer in another language: lines translated."
    )
    kept_in_english: list[str] = Field(
        default_factory=list, description="Lines left in English, each 'slot: why'."
    )
    misaligned: int | None = Field(
        default=None, description="Translated lines the reply had out of place."
    )
    seconds: float = 0.0


def splits_of(directory: str | Path) -> dict[str, Path]:
    """The labelled folders under ``directory``: itself, or its ``dev/`` and ``test/``.

    A set that is tuned on must be reported apart from the one that is not: a folder
    without its own ``labels.json`` is read as a parent of split folders that have one.
    """
    folder = Path(directory)
    if (folder / "labels.json").is_file() or not folder.is_dir():
        return {folder.name: folder}
    found = {
        child.name: child for child in sorted(folder.iterdir()) if (child / "labels.json").is_file()
    }
    return found or {folder.name: folder}


def evaluate_answers(
    directory: str | Path,
    *,
    settings: Settings,
    backend: Backend | None = None,
    embedder: Embedder | None = None,
    labels_file: str | Path | None = None,
    answers_dir: str | Path | None = None,
) -> tuple[list[BundleScore], dict[str, Any]]:
    """Answer every labelled bundle in ``directory``; return per-bundle and overall scores.

    ``answers_dir`` also keeps each answer, as ``<bundle>.json`` and ``<bundle>.md``, to
    be read in full.
    """
    folder = Path(directory)
    labels_path = Path(labels_file) if labels_file else folder / "labels.json"
    try:
        raw = json.loads(labels_path.read_text(encoding="utf-8"))
        labels = {name: BundleLabel.model_validate(value) for name, value in raw.items()}
    except FileNotFoundError:
        raise ConfigError(f"labels file {labels_path} does not exist") from None
    except (json.JSONDecodeError, ValidationError, AttributeError) as exc:
        raise ConfigError(f"labels file {labels_path} is invalid: {exc}") from None
    keep = Path(answers_dir) if answers_dir else None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    scores = [
        _score(folder / name, label, settings, backend, embedder, keep)
        for name, label in sorted(labels.items())
    ]
    return scores, _overall(scores)


def _score(
    path: Path,
    label: BundleLabel,
    settings: Settings,
    backend: Backend | None,
    embedder: Embedder | None,
    keep: Path | None = None,
) -> BundleScore:
    started = time.perf_counter()
    try:
        bundle = load_bundle(path)
        answer = explain(bundle=bundle, settings=settings, backend=backend, embedder=embedder)
        if keep is not None:
            (keep / f"{path.stem}.json").write_text(answer.to_json(), encoding="utf-8")
            (keep / f"{path.stem}.md").write_text(answer.to_markdown(), encoding="utf-8")
    except GroundedAnswerError as exc:
        return BundleScore(
            bundle=path.name,
            parsed=False,
            error=str(exc),
            seconds=round(time.perf_counter() - started, 3),
        )
    seconds = time.perf_counter() - started
    allowed = {link_key(link) for link in answer.allowed_links}
    rendered = answer.to_json() + "\n" + answer.to_markdown()
    foreign = sum(1 for m in find_links(rendered) if m.key not in allowed)

    def ids_for(links: list[str]) -> set[str]:
        keys = {link_key(link) for link in links}
        return {s.id for s in bundle.corpus.sources if s.link_keys & keys}

    relevant, optional = ids_for(label.relevant), ids_for(label.optional)
    cited = {ref.source_id for ref in answer.references}
    judged = cited - optional
    complete = bool(answer.task.statement.strip()) and (
        bool(answer.workflow and answer.workflow.steps and answer.references)
        if answer.answerable
        else bool(answer.note.strip())
    )
    models = {s.id for s in bundle.corpus.sources if s.role is Role.MODEL}
    steps = answer.workflow.steps if answer.workflow else []
    in_workflow = {step.source_id for step in steps} | {
        alternative for step in steps for alternative in step.alternatives
    }
    statement = answer.task.statement.lower()
    translation = answer.validation.translation
    return BundleScore(
        bundle=path.name,
        parsed=True,
        sections_complete=complete,
        foreign_links=foreign,
        recall=round(len(cited & relevant) / len(relevant), 4) if relevant else None,
        precision=round(len(judged & relevant) / len(judged), 4) if judged else None,
        answerable_correct=answer.answerable == label.answerable,
        task_named=(
            any(k.lower() in statement for k in label.task_keywords)
            if label.answerable and label.task_keywords
            else None
        ),
        models_cited=models <= cited if label.answerable else None,
        models_in_workflow=models <= in_workflow if label.answerable else None,
        in_language=_in_language(answer)
        if answer.plan and not answer.plan.question.english
        else None,
        repairs=max(0, answer.validation.attempts - 1),  # 0 attempts: no writing call (plan mode)
        valid_first_try=answer.validation.valid_first_try,
        links_caught=sum(
            "link" in e for e in answer.validation.repaired + answer.validation.dropped
        ),
        completion_tokens=answer.provenance.usage.completion_tokens,
        prompt_tokens=answer.provenance.usage.prompt_tokens,
        backend_seconds=answer.provenance.usage.seconds,
        judge_seconds=answer.provenance.timings.get("judge"),
        judgements=sum(s.judgement is not None for s in answer.plan.sources) if answer.plan else 0,
        translated=len(translation.translated) if translation else None,
        kept_in_english=list(translation.kept) if translation else [],
        misaligned=translation.misaligned if translation else None,
        seconds=round(seconds, 3),
    )


def _in_language(answer: Any) -> bool:
    """Whether the task statement is in the question's language (script, else langid)."""
    from ..planning import script_matches

    language = answer.plan.question.language
    text = answer.task.statement
    matched = script_matches(text, language)
    if matched is not None:
        return matched
    import py3langid

    return bool(py3langid.classify(text)[0] == language)


def _median(values: list[int]) -> float | None:
    ordered = sorted(values)
    return float(ordered[len(ordered) // 2]) if ordered else None


def _median_float(values: list[float]) -> float | None:
    ordered = sorted(values)
    return round(ordered[len(ordered) // 2], 3) if ordered else None


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _rate(scores: list[BundleScore]) -> float | None:
    tokens = sum(s.completion_tokens or 0 for s in scores)
    seconds = sum(s.backend_seconds for s in scores)
    return round(tokens / seconds, 2) if tokens and seconds else None


def _overall(scores: list[BundleScore]) -> dict[str, Any]:
    parsed = [s for s in scores if s.parsed]
    latencies = sorted(s.seconds for s in parsed)
    return {
        "bundles": len(scores),
        "parsed": len(parsed),
        "sections_complete": sum(s.sections_complete for s in parsed),
        "foreign_links": sum(s.foreign_links for s in scores),
        "citation_recall": _mean([s.recall for s in parsed if s.recall is not None]),
        "citation_precision": _mean([s.precision for s in parsed if s.precision is not None]),
        "answerable_accuracy": _mean([float(s.answerable_correct) for s in parsed]),
        "task_named": _mean([float(s.task_named) for s in parsed if s.task_named is not None]),
        "models_cited": _mean(
            [float(s.models_cited) for s in parsed if s.models_cited is not None]
        ),
        "models_in_workflow": _mean(
            [float(s.models_in_workflow) for s in parsed if s.models_in_workflow is not None]
        ),
        "in_language": _mean([float(s.in_language) for s in parsed if s.in_language is not None]),
        "completion_tokens_p50": _median(
            [s.completion_tokens for s in parsed if s.completion_tokens is not None]
        ),
        "prompt_tokens_p50": _median(
            [s.prompt_tokens for s in parsed if s.prompt_tokens is not None]
        ),
        "judge_seconds_p50": _median_float(
            [s.judge_seconds for s in parsed if s.judge_seconds is not None]
        ),
        "judgements": sum(s.judgements for s in parsed),
        "lines_translated": sum(s.translated or 0 for s in parsed),
        "lines_kept_in_english": sum(len(s.kept_in_english) for s in parsed),
        "lines_misaligned": sum(s.misaligned or 0 for s in parsed),
        "repairs": sum(s.repairs for s in parsed),
        "valid_first_try": _mean([float(s.valid_first_try) for s in parsed]),
        "links_caught": sum(s.links_caught for s in parsed),
        "tokens_per_second": _rate(parsed),
        "latency_p50_s": latencies[len(latencies) // 2] if latencies else None,
        "latency_p95_s": latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
        if latencies
        else None,
        "latency_max_s": latencies[-1] if latencies else None,
    }


def format_table(scores: list[BundleScore]) -> str:
    """A fixed-width table, one row per bundle."""

    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "NO"
        if isinstance(value, float):
            return f"{value:.2f}"
        return str(value)

    header = [
        "bundle",
        "parsed",
        "complete",
        "foreign",
        "recall",
        "precision",
        "answerable",
        "task",
        "models",
        "in flow",
        "language",
        "repairs",
        "seconds",
    ]
    rows = [
        [
            s.bundle[:36],
            s.parsed,
            s.sections_complete,
            s.foreign_links,
            s.recall,
            s.precision,
            s.answerable_correct,
            s.task_named,
            s.models_cited,
            s.models_in_workflow,
            s.in_language,
            s.repairs,
            s.seconds,
        ]
        for s in scores
    ]
    table = [header, *[[cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in table]
    errors = [f"  {s.bundle}: {s.error}" for s in scores if s.error]
    return "\n".join(lines + (["errors:", *errors] if errors else []))
