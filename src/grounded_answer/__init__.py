"""grounded-answer: explain recommended AI models from the provided sources, and nothing else.

    >>> from grounded_answer import explain
    >>> answer = explain("Can AI sharpen a blurry photo?")
    >>> print(answer.to_markdown())

Heavy dependencies (torch, sentence-transformers, faiss, openai) load on first use, and so
do the package's own modules beyond its exceptions.
"""

from typing import TYPE_CHECKING, Any

from .errors import (
    AnswerRunError,
    BackendConnectionError,
    BackendError,
    BackendRateLimitError,
    BackendResponseError,
    BackendTimeoutError,
    BundleParseError,
    ConfigError,
    CorpusError,
    GroundedAnswerError,
    IndexStoreError,
    QuestionError,
    RunCancelledError,
    RunTimeoutError,
    ServerBusyError,
    SourceFileError,
    UngroundedAnswerError,
    UserInputError,
)

if TYPE_CHECKING:
    from .answer import Answer, Reference, Task, ValidationReport, Workflow, WorkflowStep
    from .config import Settings, load_settings
    from .pipeline import aexplain, explain
    from .sources.bundle import Bundle, load_bundle, parse_bundle
    from .sources.corpus import Corpus, Passage, Role, Source, load_corpus

# Everything but the errors is imported on first use (PEP 562): the answer, plan and
# pipeline modules define many pydantic models, and building them is most of an import.
_LAZY = {
    "Answer": "answer",
    "Reference": "answer",
    "Task": "answer",
    "ValidationReport": "answer",
    "Workflow": "answer",
    "WorkflowStep": "answer",
    "Bundle": "sources",
    "load_bundle": "sources",
    "parse_bundle": "sources",
    "Settings": "config",
    "load_settings": "config",
    "Corpus": "sources",
    "Passage": "sources",
    "Role": "sources",
    "Source": "sources",
    "load_corpus": "sources",
    "aexplain": "pipeline",
    "explain": "pipeline",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'grounded_answer' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "Answer",
    "AnswerRunError",
    "BackendConnectionError",
    "BackendError",
    "BackendRateLimitError",
    "BackendResponseError",
    "BackendTimeoutError",
    "Bundle",
    "BundleParseError",
    "ConfigError",
    "Corpus",
    "CorpusError",
    "GroundedAnswerError",
    "IndexStoreError",
    "Passage",
    "QuestionError",
    "Reference",
    "Role",
    "RunCancelledError",
    "RunTimeoutError",
    "ServerBusyError",
    "Settings",
    "Source",
    "SourceFileError",
    "Task",
    "UngroundedAnswerError",
    "UserInputError",
    "ValidationReport",
    "Workflow",
    "WorkflowStep",
    "__version__",
    "aexplain",
    "explain",
    "load_bundle",
    "load_corpus",
    "load_settings",
    "parse_bundle",
]
