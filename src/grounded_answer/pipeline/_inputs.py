"""What a call is about: the sources in play and the question, checked before any work.

The CLI, the server, the batch runner and :func:`~grounded_answer.explain` all resolve
their inputs here, so every entry point refuses the same input with the same words.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Settings
from ..errors import BundleParseError, CorpusError, QuestionError
from ..sources import DEFAULT_CORPUS, Bundle, Corpus, load_bundle, load_corpus

__all__ = ["check_question", "resolve_sources"]


def resolve_sources(
    bundle: Bundle | str | Path | None,
    corpus: Corpus | str | Path | None,
    settings: Settings,
) -> tuple[Corpus, str | None]:
    """The corpus in play and its default question: the bundle's, else the corpus's.

    A :class:`Bundle` or :class:`Corpus` handed over as an object is held to the same
    ``sources.max_bundle_sources`` / ``max_corpus_sources`` as one read from a file.
    """
    limits = settings.sources
    if bundle is not None:
        parsed = bundle if isinstance(bundle, Bundle) else load_bundle(bundle, settings=settings)
        if len(parsed.corpus.sources) > limits.max_bundle_sources:
            raise BundleParseError(
                f"{len(parsed.corpus.sources)} sources; the limit is "
                f"{limits.max_bundle_sources} (sources.max_bundle_sources)",
                path=parsed.path,
            )
        return parsed.corpus, parsed.question
    if isinstance(corpus, Corpus):
        if len(corpus.sources) > limits.max_corpus_sources:
            raise CorpusError(
                f"{len(corpus.sources)} sources; the limit is "
                f"{limits.max_corpus_sources} (sources.max_corpus_sources)"
            )
        return corpus, corpus.question
    loaded = load_corpus(corpus or settings.corpus or DEFAULT_CORPUS, settings=settings)
    return loaded, loaded.question


def check_question(question: str | None, settings: Settings) -> str:
    """The question with its whitespace collapsed, checked before any work is spent on it.

    The CLI, the server and :func:`explain` all call it, so every entry point refuses the
    same questions with the same words.

    Raises:
        QuestionError: no question, not text, empty, or longer than
            ``answer.max_question_chars``.

    """
    if question is None:
        raise QuestionError("no question given, and the bundle or corpus has no example question")
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, not {type(question).__name__}")
    cleaned = " ".join(question.split())
    if not cleaned:
        raise QuestionError("the question is empty")
    limit = settings.answer.max_question_chars
    if len(cleaned) > limit:
        raise QuestionError(
            f"the question has {len(cleaned)} characters; the limit is {limit} "
            "(answer.max_question_chars)"
        )
    return cleaned
