"""A bundle taken as far as the writers start: its plan, prompt context and offline draft.

The writers' unit tests (guided slots, translation) need what the pipeline hands them;
this builds it the way ``explain()`` does, offline, with the hashing embedder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grounded_answer import load_bundle, load_settings
from grounded_answer.backends.stub import StubBackend
from grounded_answer.grounding.draft import AnswerDraft, GroundingContext, check_draft
from grounded_answer.pipeline import plan_evidence, retrieve_passages, retriever_for
from grounded_answer.pipeline._run import Run
from grounded_answer.pipeline._write import prompt_context
from grounded_answer.planning import EvidencePlan
from grounded_answer.sources import Role
from grounded_answer.writing.offline import offline_draft
from grounded_answer.writing.prompts import PromptContext, load_prompts

from .fakes import HashEmbedder


@dataclass(frozen=True)
class Drafting:
    """What the writers get for one bundle."""

    plan: EvidencePlan
    context: PromptContext
    grounding: GroundingContext
    baseline: AnswerDraft


def drafting(bundle: Path, cache: Path) -> Drafting:
    settings = load_settings(index={"cache_dir": str(cache)})
    parsed = load_bundle(bundle)
    question = parsed.question or ""
    embedder = HashEmbedder()
    retriever = retriever_for(parsed.corpus, embedder, settings)
    hits, ranked = retrieve_passages(retriever, question, settings)
    run = Run(
        question=question,
        settings=settings,
        sources=parsed.corpus,
        backend=StubBackend(),
        embedder=embedder,
        prompts=load_prompts(None),
    )
    plan = plan_evidence(question, retriever, ranked, settings, run.withhold)
    context, aliases = prompt_context(run, hits, plan)
    grounding = GroundingContext(
        aliases=frozenset(aliases),
        link_keys=frozenset(k for s in aliases.values() for k in s.link_keys),
        step_aliases=frozenset(a for a, s in aliases.items() if s.role is Role.MODEL) or None,
        question=context.question,
    )
    baseline = check_draft(offline_draft(context, language_note=False), grounding)
    return Drafting(plan=plan, context=context, grounding=grounding, baseline=baseline)
