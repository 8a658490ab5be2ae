"""The HTTP service: ``POST /v1/explain``, ``POST /v1/explain/stream``, a page at ``/``.

Needs the ``serve`` extra (FastAPI and uvicorn); importing this package does not import
them, so ``grounded_answer`` stays light, and a missing extra is a
:class:`~grounded_answer.errors.ConfigError` that says what to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import Settings, load_settings
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..embeddings import Embedder

__all__ = ["create_app", "run"]

_HINT = "pip install 'grounded-answer[serve]'"


def create_app(settings: Settings | None = None, *, embedder: Embedder | None = None) -> Any:
    """The ASGI application (a FastAPI instance) serving answers under ``settings``.

    Args:
        settings: Configuration; default :func:`~grounded_answer.load_settings`.
        embedder: An embedder to share instead of the configured model (tests, custom code).

    Raises:
        ConfigError: the ``serve`` extra is not installed, or a configured corpus is unusable.

    """
    try:
        from ._app import build_app
    except ImportError as exc:
        raise ConfigError(f"the HTTP service needs FastAPI and uvicorn: {_HINT} "
                          f"({exc.name or exc} is missing)") from None
    return build_app(settings or load_settings(), embedder=embedder)


def run(settings: Settings | None = None) -> None:
    """Serve on ``settings.serve.host``:``settings.serve.port`` until interrupted."""
    settings = settings or load_settings()
    try:
        import uvicorn
    except ImportError as exc:
        raise ConfigError(f"the HTTP service needs FastAPI and uvicorn: {_HINT} "
                          f"({exc.name or exc} is missing)") from None
    app = create_app(settings)
    uvicorn.run(app, host=settings.serve.host, port=settings.serve.port, log_level="info",
                proxy_headers=False, server_header=False)
