"""The public surface is a decision: this test records it (as httpx does)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest

import grounded_answer


def test_public_names() -> None:
    assert sorted(grounded_answer.__all__) == sorted(
        [
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
    )
    for name in grounded_answer.__all__:
        assert hasattr(grounded_answer, name), name


def _namespace(module: types.ModuleType) -> set[str]:
    """What ``module`` really offers: the public names its own modules define, lazy or not.

    Submodules, names it only imports for its own use (``Corpus`` in ``stores``) and
    typing helpers are not part of the surface.
    """

    def ours(value: object) -> bool:
        home = getattr(value, "__module__", None)
        return home is None or str(home).startswith(module.__name__)

    lazy = set(getattr(module, "_LAZY", {}))
    own = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name not in {"TYPE_CHECKING", "annotations"}
        and ours(value)
    }
    return own | lazy | ({"__version__"} if hasattr(module, "__version__") else set())


@pytest.mark.parametrize(
    "name",
    [
        "grounded_answer",
        "grounded_answer.embeddings",
        "grounded_answer.stores",
        "grounded_answer.backends",
        "grounded_answer.serve",
        "grounded_answer.grounding",
        "grounded_answer.evals",
    ],
)
def test_all_is_the_real_namespace(name: str) -> None:
    module = importlib.import_module(name)
    assert sorted(module.__all__) == sorted(_namespace(module))
    assert sorted(dir(module)) == sorted(module.__all__) or not hasattr(module, "_LAZY")


def test_errors_split_misuse_from_runtime() -> None:
    ga = grounded_answer
    misuse: tuple[type[Exception], ...] = (
        ga.QuestionError,
        ga.BundleParseError,
        ga.CorpusError,
        ga.ConfigError,
    )
    for error in misuse:
        assert issubclass(error, ga.UserInputError)
    runtime: tuple[type[Exception], ...] = (
        ga.BackendTimeoutError,
        ga.UngroundedAnswerError,
        ga.IndexStoreError,
        ga.RunCancelledError,
        ga.RunTimeoutError,
        ga.ServerBusyError,
    )
    for error in runtime:
        assert issubclass(error, ga.AnswerRunError)
    assert not issubclass(ga.AnswerRunError, ga.UserInputError)


def test_import_is_light() -> None:
    code = (
        "import sys, grounded_answer; "
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'faiss', 'openai', "
        "'transformers', 'fastapi', 'uvicorn', 'starlette') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_serve_package_imports_fastapi_only_when_an_app_is_made() -> None:
    code = (
        "import sys, grounded_answer.serve, grounded_answer.batch; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'torch') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
