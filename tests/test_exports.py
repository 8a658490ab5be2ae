"""The public surface is a decision: this test records it (as httpx does)."""

from __future__ import annotations

import subprocess
import sys

import grounded_answer


def test_public_names() -> None:
    assert sorted(grounded_answer.__all__) == sorted([
        "Answer", "AnswerRunError", "BackendConnectionError", "BackendError",
        "BackendRateLimitError", "BackendResponseError", "BackendTimeoutError", "Bundle",
        "BundleParseError", "ConfigError", "Corpus", "CorpusError", "GroundedAnswerError",
        "IndexStoreError", "Passage", "QuestionError", "Reference", "Role",
        "RunCancelledError", "RunTimeoutError", "ServerBusyError", "Settings",
        "Source", "SourceFileError", "Task", "UngroundedAnswerError", "UserInputError",
        "ValidationReport", "Workflow", "WorkflowStep", "__version__", "aexplain", "explain",
        "load_bundle", "load_corpus", "load_settings", "parse_bundle",
    ])
    for name in grounded_answer.__all__:
        assert hasattr(grounded_answer, name), name


def test_errors_split_misuse_from_runtime() -> None:
    ga = grounded_answer
    for error in (ga.QuestionError, ga.BundleParseError, ga.CorpusError, ga.ConfigError):
        assert issubclass(error, ga.UserInputError)
    for error in (ga.BackendTimeoutError, ga.UngroundedAnswerError, ga.IndexStoreError,
                  ga.RunCancelledError, ga.RunTimeoutError, ga.ServerBusyError):
        assert issubclass(error, ga.AnswerRunError)
    assert not issubclass(ga.AnswerRunError, ga.UserInputError)


def test_import_is_light() -> None:
    code = ("import sys, grounded_answer; "
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'faiss', 'openai', "
            "'transformers', 'fastapi', 'uvicorn', 'starlette') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_the_serve_package_imports_fastapi_only_when_an_app_is_made() -> None:
    code = ("import sys, grounded_answer.serve, grounded_answer.batch; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'torch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
