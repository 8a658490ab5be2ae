"""``grounded-answer serve``: one process, or ``--workers N`` processes on one port.

One worker: the app is built here with its model and corpora loaded before the socket
opens, so a broken corpus or cache is an error on the terminal (exit 2 or 1), not a
server that never gets ready.

Several workers (uvicorn's supervisor, each worker a fresh interpreter that imports
:func:`worker_app`): everything is loaded and checked once here first, for the same
reason, which also builds the indexes once instead of N times; then the workers start.
They get exactly the settings this process resolved (command-line flags included)
through one environment variable holding them as JSON, secrets included, which only this
user can read (``/proc/<pid>/environ``) and which leaves nothing behind on disk. The
metrics of every worker meet in a fresh ``PROMETHEUS_MULTIPROC_DIR`` per start, deleted
when the server stops.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ..config import Settings, load_settings
from ..errors import ConfigError

__all__ = ["SETTINGS_ENV", "check_binding", "is_loopback", "run", "worker_app"]

#: The environment variable that hands the resolved settings to the workers (internal).
SETTINGS_ENV = "GROUNDED_ANSWER_WORKER_SETTINGS"

#: Seconds uvicorn waits for connections after the drain before cancelling them.
_GRACE = 3.0


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(settings: Settings, *, insecure: bool) -> None:
    """Refuse to listen beyond loopback without API keys, unless ``insecure``.

    Raises:
        ConfigError: ``serve.host`` is not loopback, no key is configured, and
            ``insecure`` is False; or a key is unusable.

    """
    from ._auth import ApiKeys

    keys = ApiKeys.from_settings(settings.serve)
    if keys.enabled or insecure or is_loopback(settings.serve.host):
        return
    raise ConfigError(
        f"serve.host is {settings.serve.host}, beyond loopback, and no API key is configured "
        "(serve.api_keys or serve.api_keys_file): anyone who reaches the port could spend "
        "the LLM. Configure keys, or pass --insecure when a proxy in front authenticates."
    )


def run(settings: Settings | None = None, *, insecure: bool = False) -> None:
    """Serve on ``serve.host``:``serve.port`` with ``serve.workers`` processes until stopped.

    SIGTERM drains (see :mod:`._lifecycle`) and returns; SIGINT stops at once.

    Raises:
        ConfigError: see :func:`check_binding`; a missing extra.
        GroundedAnswerError: loading the model, corpora or cache failed.

    """
    import uvicorn

    settings = settings or load_settings()
    check_binding(settings, insecure=insecure)
    serve = settings.serve
    options: dict[str, Any] = {
        "host": serve.host,
        "port": serve.port,
        "log_config": log_config(),
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
        "timeout_graceful_shutdown": _GRACE,
        "lifespan": "on",
    }
    if serve.workers == 1:
        from ._app import build_app

        app = build_app(settings, load_now=True)
        # uvicorn re-raises the SIGTERM it handled once it has shut down; the drain has
        # honoured it by then, so it must not kill the process with status -15.
        previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
        try:
            uvicorn.Server(uvicorn.Config(app, **options)).run()
        except KeyboardInterrupt:
            pass  # SIGINT, re-raised by uvicorn after its shutdown: a normal stop (as uvicorn.run)
        finally:
            signal.signal(signal.SIGTERM, previous)
        return
    from ._app import AnswerService

    AnswerService(settings).load()  # fail here, once, rather than in every worker
    with (
        _metrics_dir() as directory,
        _environment(
            {
                SETTINGS_ENV: dump_settings(settings),
                "PROMETHEUS_MULTIPROC_DIR": str(directory),
            }
        ),
    ):
        uvicorn.run(
            "grounded_answer.serve._run:worker_app", factory=True, workers=serve.workers, **options
        )


def worker_app() -> Any:
    """The app of one ``--workers`` process, under the settings its parent resolved."""
    from ._app import build_app

    data = os.environ.get(SETTINGS_ENV)
    settings = load_settings(**json.loads(data)) if data else load_settings()
    return build_app(settings)


def dump_settings(settings: Settings) -> str:
    """``settings`` as JSON that :func:`load_settings` takes back, secrets in clear."""

    def encode(value: object) -> object:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, Path):
            return str(value)
        raise TypeError(f"cannot encode {type(value).__name__}")

    return json.dumps(settings.model_dump(mode="python"), default=encode)


def log_config() -> dict[str, Any]:
    """The logging setup: uvicorn's, plus JSON access lines on stdout, ours on stderr."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["line"] = {"format": "%(message)s"}
    config["handlers"]["grounded_answer_access"] = {
        "formatter": "line",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["grounded_answer.serve.access"] = {
        "handlers": ["grounded_answer_access"],
        "level": "INFO",
        "propagate": False,
    }
    config["loggers"]["grounded_answer"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    return config


@contextlib.contextmanager
def _metrics_dir() -> Iterator[Path]:
    # Fresh per start: samples of an earlier run's dead workers must not be summed in.
    parent = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    directory = Path(tempfile.mkdtemp(prefix="grounded-answer-metrics-", dir=parent))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
