"""Running the real command line in a subprocess, with its own index cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def cli(
    *args: str, cache: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "GROUNDED_ANSWER_INDEX__CACHE_DIR": str(cache), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "grounded_answer.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )
