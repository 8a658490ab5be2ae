"""Time to the first and the last section on the service's event stream.

Starts ``grounded-answer serve`` on 127.0.0.1 (the stub, or the OpenAI-compatible server
given by ``--base-url``, e.g. the local model of ``scripts/local-llm``), posts each bundle
to ``/v1/explain/stream`` and records, from the request: the first event of any kind, the
plan, the first judgement, the first section (task, step or reference), the last section
and the answer. Medians over the bundles are printed and written to a JSON file.

Usage: ``.venv/bin/python benchmarks/stream.py [--base-url URL --model NAME]
[--bundles FILE ...] [--repeat N] [--out FILE]``. The response cache is off, so every
answer with a model is a real call.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = [
    "00_seed.txt",
    "02_deblur_motion_blur.txt",
    "d06_voice_messages_pt_to_korean.txt",
    "e01_crosswalk_tracking.txt",
]
SECTIONS = ("task", "step", "reference")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timeline(url: str, bundle: str) -> dict[str, float | None]:
    """Seconds from the request to each milestone of one streamed answer."""
    began = time.perf_counter()
    marks: dict[str, float | None] = {
        "first_event": None,
        "plan": None,
        "first_judgement": None,
        "first_section": None,
        "last_section": None,
        "answer": None,
    }
    name = ""
    with httpx.stream(
        "POST", url + "/v1/explain/stream", json={"bundle": bundle}, timeout=600
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            now = time.perf_counter() - began
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
                marks["first_event"] = marks["first_event"] or now
                if name == "plan" and marks["plan"] is None:
                    marks["plan"] = now
                if name == "judgement" and marks["first_judgement"] is None:
                    marks["first_judgement"] = now
                if name in SECTIONS:
                    marks["first_section"] = marks["first_section"] or now
                    marks["last_section"] = now
                if name == "answer":
                    marks["answer"] = now
    return marks


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base-url", help="an OpenAI-compatible server (default: the stub)")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument(
        "--bundles", nargs="+", default=DEFAULT, help="bundle files under benchmarks/bundles/dev"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "stream.json"))
    args = parser.parse_args()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROUNDED_ANSWER_")}
    env["GROUNDED_ANSWER_INDEX__CACHE_DIR"] = tempfile.mkdtemp(prefix="stream-")
    env["GROUNDED_ANSWER_EMBEDDING__EXPORT_DIR"] = str(Path.home() / ".cache" / "grounded-answer")
    env["GROUNDED_ANSWER_LLM__CACHE"] = "false"
    if args.base_url:
        env.update(
            GROUNDED_ANSWER_LLM__BACKEND="openai",
            GROUNDED_ANSWER_LLM__BASE_URL=args.base_url,
            GROUNDED_ANSWER_LLM__MODEL=args.model,
            GROUNDED_ANSWER_LLM__API_KEY="local",
            GROUNDED_ANSWER_LLM__TIMEOUT="600",
        )
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "grounded-answer"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        rows = []
        for _ in range(args.repeat):
            for name in args.bundles:
                bundle = (ROOT / "benchmarks" / "bundles" / "dev" / name).read_text()
                marks = timeline(url, bundle)
                rows.append({"bundle": name, **marks})
                print(json.dumps(rows[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)

    def median(key: str) -> float | None:
        values = [row[key] for row in rows if row[key] is not None]
        return round(statistics.median(values), 3) if values else None

    summary = {
        "backend": (args.base_url and args.model) or "stub",
        "answers": len(rows),
        **{
            f"{key}_p50_s": median(key)
            for key in (
                "first_event",
                "plan",
                "first_judgement",
                "first_section",
                "last_section",
                "answer",
            )
        },
    }
    print(json.dumps(summary, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
