"""How a related paper bears on the answer: the plan's relevance rules, one paper at a time.

Relevance is judged per source, not per passage, from three kinds of evidence, each
recorded with the judgement:

1. *Task agreement*: the tasks a paper's title names (:mod:`grounded_answer.sources.tasks`)
   against the recommended models' tasks and the task the question describes. The same
   task is strong evidence; another task on the same kind of data is weak; another kind
   of data (an audio paper for an image model) rules a paper out.
2. *Model affinity*: the best cosine between the paper's passages and the recommended
   models' passages. It needs no question, so it still works when the question is in a
   language the embedding model cannot read, and it is what decides when a title names
   no task.
3. *Question similarity*: the best cosine between the paper and the question, shown as
   evidence and used alone only when there is no recommended model to compare with.

And by what a paper *is*: the method a model's name is built on, a general architecture
for the data the model reads, a part of the model's name (:func:`named_relation`).

The thresholds were tuned on ``benchmarks/bundles/dev`` only; ``test`` is the held-out
split that the docs report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

from ..sources.corpus import Source
from ..sources.tasks import TaskHint, architecture_of, expand_name, tasks_in_order
from .models import Agreement, Evidence, QuestionReading, Relevance

__all__ = [
    "AFFINITY_BORDERLINE",
    "AFFINITY_RELEVANT",
    "AFFINITY_TASK",
    "QUESTION_CLOSE",
    "QUESTION_MARGIN",
    "agreement_of",
    "evidence_for",
    "judge_paper",
    "named_relation",
    "ruled",
    "title_says",
]

# A paper whose title names no task is relevant when its passages are this close to a
# recommended model's (cosine), or this close and about a task the summary shares with
# the models or the question; borderline above the lower mark.
AFFINITY_RELEVANT = 0.45
AFFINITY_TASK = 0.30
AFFINITY_BORDERLINE = 0.33
# A paper this close to the question (cosine) is about what the question asks, whatever
# the recommended model's task: the tracker for "then follow each car from frame to
# frame" when the model is a detector.
QUESTION_CLOSE = 0.45
# Without recommended models to compare with (a corpus whose retrieval found none), a
# paper is relevant when it scores within this margin of the best paper.
QUESTION_MARGIN = 0.12


def named_relation(
    paper: Source,
    tasks: Sequence[TaskHint],
    models: Sequence[Source],
    model_tasks: set[TaskHint],
    titles: Mapping[str, str],
) -> str | None:
    """Why a paper is relevant by what it is, not by scores: the reason, or None.

    ``tasks`` are the paper's (its title's, else its summary's).

    The model's name names the paper's method ("BLIP2-OPT" and "OPT: ..."); the paper
    introduced an architecture for the data the model reads (the Transformer, ResNet); or
    the paper names a part of the model's name (its backbone or training data: "BERT",
    "SIDD").
    """
    base = _built_on(paper, models)
    if base is not None:
        return f"is what {titles.get(base.id, base.title)} is built on (its name says so)"
    arch = architecture_of(paper.title)
    reads = {h.takes for h in model_tasks} & (arch.reads if arch else frozenset())
    if arch is not None and models and reads:
        return (
            f"introduced the {arch.name}, an architecture {'/'.join(sorted(reads))} "
            "models like the recommended one are built on"
        )
    mention = _named_in(paper, models)
    if mention is not None and agreement_of(tasks[:2], model_tasks, ()) != "other data":
        # A name in passing ("like BERT") does not make an image paper about text.
        model, name = mention
        return (
            f"names {name}, which {titles.get(model.id, model.title)}'s name says it is "
            "built on or trained on"
        )
    return None


def judge_paper(
    paper: Source,
    question_scores: Mapping[str, float],
    model_scores: Mapping[str, float] | None,
    reading: QuestionReading,
    question_tasks: tuple[TaskHint, ...],
    model_tasks: set[TaskHint],
    have_models: bool,
    best_paper: float,
    said: Sequence[tuple[str, str]] = (),
) -> tuple[Source, Relevance, str, Evidence]:
    """How one related paper bears on the answer: its relevance, the reason, the evidence."""
    title_tasks = tasks_in_order(expand_name(paper.title))
    summary_tasks = tasks_in_order(paper.summary)
    affinity = model_scores.get(paper.id) if model_scores is not None else None
    agreement = agreement_of(title_tasks or summary_tasks[:2], model_tasks, question_tasks)
    evidence = evidence_for(
        paper, question_scores, affinity, reading, title_tasks or summary_tasks, agreement
    )
    named = title_tasks[0].name if title_tasks else ""
    if not have_models or affinity is None:
        score = question_scores.get(paper.id)
        if (
            score is not None
            and score >= best_paper - QUESTION_MARGIN
            and (agreement in ("same task", "question's task", "unknown"))
        ):
            return (
                paper,
                Relevance.RELEVANT,
                "is among the closest matches to the question",
                ruled(evidence, "closest to the question"),
            )
        return (
            paper,
            Relevance.BORDERLINE,
            "matches the question less closely",
            ruled(evidence, "less close"),
        )
    # The question's own task counts when it is a close kin of the models' (the user
    # enlarged a photo, the model deblurs one); a word like "noise" in a question about
    # image generation must not pull in a denoising paper.
    families = {h.family for h in model_tasks}
    kin = {h for h in question_tasks if h.family in families or not model_tasks}
    shared = set(title_tasks) & (model_tasks | kin)
    if shared:
        name = next(h.name for h in title_tasks if h in shared)
        whose = (
            "the recommended model's task"
            if any(h in model_tasks for h in shared)
            else "what the question describes"
        )
        return paper, Relevance.RELEVANT, f"is on {name}, {whose}", ruled(evidence, "same task")
    for model_title, words in said:
        if title_says(paper.title, words):
            # The table knows no task here, but the paper's title says what the model's
            # name says ("LowLight-" and "... for Low-Light Enhancement").
            return (
                paper,
                Relevance.RELEVANT,
                f"names {words}, what {model_title}'s name says it is for",
                ruled(evidence, "name says"),
            )
    if agreement == "other data":
        kinds = "/".join(
            sorted({m for h in title_tasks or summary_tasks[:2] for m in h.modalities})
        )
        return (
            paper,
            Relevance.NOT_RELEVANT,
            f"is about {named or 'other'} ({kinds} data), "
            "not the data the recommended model works on",
            ruled(evidence, "other data"),
        )
    if reading.language == "en" and (evidence.question_score or 0.0) >= QUESTION_CLOSE:
        # Only for a question read as asked: a model's English restatement is plainer and
        # scores higher against everything (it pulled a music generator into karaoke).
        return (
            paper,
            Relevance.RELEVANT,
            "is close to what the question asks about",
            ruled(evidence, "close to the question"),
        )
    if title_tasks:
        mark = Relevance.BORDERLINE if affinity >= AFFINITY_BORDERLINE else Relevance.NOT_RELEVANT
        return paper, mark, f"is about {named}, a different task", ruled(evidence, "different task")
    on_task = [h for h in summary_tasks if h in model_tasks | kin]
    if affinity >= AFFINITY_RELEVANT or (on_task and affinity >= AFFINITY_TASK):
        if not on_task:
            return (
                paper,
                Relevance.RELEVANT,
                "is close in content to the recommended model",
                ruled(evidence, "close in content"),
            )
        decisive = on_task[0]
        # The decisive task first, so a writer quotes the sentence that names it.
        evidence = evidence.model_copy(
            update={"tasks": list(dict.fromkeys([decisive.name, *evidence.tasks]))}
        )
        whose = "" if decisive in model_tasks else ", what the question describes"
        return (
            paper,
            Relevance.RELEVANT,
            f"is related work on {decisive.name}{whose}",
            ruled(evidence, "related work"),
        )
    if affinity >= AFFINITY_BORDERLINE:
        return (
            paper,
            Relevance.BORDERLINE,
            "is only loosely related to the recommended model",
            ruled(evidence, "loosely related"),
        )
    return (
        paper,
        Relevance.NOT_RELEVANT,
        "is not about the recommended model's task",
        ruled(evidence, "off the task"),
    )


def agreement_of(
    tasks: Sequence[TaskHint], model_tasks: set[TaskHint], question_tasks: Sequence[TaskHint]
) -> Agreement:
    """How a paper's tasks relate to the recommended models' and the question's."""
    if not tasks or not model_tasks:
        return "unknown"
    if set(tasks) & model_tasks:
        return "same task"
    if set(tasks) & set(question_tasks):
        return "question's task"
    if {h.family for h in tasks} & {h.family for h in model_tasks}:
        return "same family"
    model_data = {m for h in model_tasks for m in h.modalities}
    if {m for h in tasks for m in h.modalities} & model_data:
        return "same data"
    return "other data"


def evidence_for(
    source: Source,
    question_scores: Mapping[str, float],
    affinity: float | None,
    reading: QuestionReading,
    tasks: Sequence[TaskHint],
    agreement: Agreement,
) -> Evidence:
    """The measurements a judgement of ``source`` rests on, rounded for display."""
    score = question_scores.get(source.id)
    return Evidence(
        question_score=round(score, 4)
        if score is not None and (reading.readable or reading.restated)
        else None,
        model_score=round(affinity, 4) if affinity is not None else None,
        tasks=list(dict.fromkeys(h.name for h in tasks)),
        agreement=agreement,
    )


_FUNCTION_WORDS = frozenset(
    {"to", "of", "and", "for", "the", "a", "an", "in", "on", "with", "automatic"}
)


def title_says(title: str, words: str) -> bool:
    """Whether ``title`` contains every content word of ``words`` (by its first 5 letters)."""
    wanted = [w[:5] for w in re.findall(r"[a-z0-9]+", words.lower()) if w not in _FUNCTION_WORDS]
    have = re.findall(r"[a-z0-9]+", title.lower())
    return bool(wanted) and all(any(h.startswith(w) for h in have) for w in wanted)


def _built_on(paper: Source, models: Sequence[Source]) -> Source | None:
    """The recommended model whose name names this paper's method ("BLIP2-OPT" and "OPT")."""
    head = paper.title.split(":", 1)[0] if ":" in paper.title else ""
    if not head or len(head) > 24 or len(head.split()) > 3:
        return None
    key = re.sub(r"[^a-z0-9]", "", re.sub(r"(\d)\.0\b", r"\1", head.lower()))
    return next((model for model in models if _name_part(key, model)), None)


def _named_in(paper: Source, models: Sequence[Source]) -> tuple[Source, str] | None:
    """A method or benchmark name in the paper's text that is part of a model's name.

    Platform names are built from the method, its backbone and its training data
    ("Senti-BERT-wwm-ext-zh", "Denoise-Restormer-SIDD"), so a paper that names one of
    them ("BERT", "SIDD") is about what the model is made of or measured on.
    """
    for name in dict.fromkeys(_METHOD_NAME.findall(f"{paper.title} {paper.summary}")):
        if name.upper().removesuffix("S") in _GENERIC_NAMES:  # "CNNs" as "CNN"
            continue
        key = name.lower()
        for model in models:
            if _name_part(key, model):
                return model, name
    return None


def _name_part(key: str, model: Source) -> bool:
    """Whether ``key`` is one of the parts of the model's name, or ends or starts one."""
    if len(key) < 3:
        return False
    return any(
        t == key or (len(key) >= 4 and (t.startswith(key) or t.endswith(key)))
        for t in _name_tokens(model.title)
    )


@lru_cache(maxsize=1024)
def _name_tokens(title: str) -> frozenset[str]:
    return frozenset(
        re.sub(r"[^a-z0-9]", "", t.lower()) for t in re.split(r"[\s_\-/.:]+", title) if t
    )


# A method's name: a word with a capital letter or digit after its first letter
# ("ViT", "HuBERT", "YOLOX", "SIDD"), three characters or more.
_METHOD_NAME = re.compile(r"\b(?=[A-Za-z0-9]*[A-Z][A-Za-z0-9]*[A-Z0-9])[A-Za-z][A-Za-z0-9]{2,}\b")
# Acronyms of kinds of network or data, not of one method: naming them says nothing.
_GENERIC_NAMES = frozenset(
    {
        "CNN",
        "GAN",
        "RNN",
        "LSTM",
        "GPU",
        "CPU",
        "TPU",
        "SOTA",
        "API",
        "MIDI",
        "PDF",
        "RGB",
        "HDR",
        "MLP",
        "VAE",
        "NLP",
        "ASR",
        "TTS",
        "OCR",
        "COCO",
        "IMAGENET",
    }
)


def ruled(evidence: Evidence, rule: str) -> Evidence:
    """``evidence`` with the name of the rule that decided (see :attr:`Evidence.rule`)."""
    return evidence.model_copy(update={"rule": rule})
