"""The HTTP service under load: /v1/explain throughput and latency, time to first section.

Starts ``grounded-answer serve`` on 127.0.0.1 (the stub backend, the configured embedder,
the seed bundle's index built beforehand by ``grounded-answer index``) and drives
``POST /v1/explain`` with the seed bundle from 1, 8 and 32 concurrent clients, each level
bounded by ``--seconds`` and ``--requests``; then reads ``/v1/explain/stream`` to time the
first streamed section. With ``--llm`` it does the same stream timing against llama.cpp's
server (``scripts/local-llm``, started and stopped here). Finally it opens the seed's page
in headless Chromium and saves a screenshot. Prints a table and writes
``benchmarks/results/serve.json`` and ``benchmarks/results/serve-seed.png``.

Usage: ``.venv/bin/python benchmarks/serve.py [--seconds 15] [--requests 400]
[--clients 1,8,32] [--llm] [--llm-runs 3]``

The load generator runs on the same machine as the server (2 shared cores here), so the
figures are what one small box does end to end, not the server alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "benchmarks" / "bundles" / "dev" / "00_seed.txt"
RESULTS = ROOT / "benchmarks" / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def service(env: dict[str, str], log: Path) -> Iterator[str]:
    """``grounded-answer serve`` in a subprocess; yields its URL, stops it afterwards."""
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "grounded_answer.cli", "serve", "--port", str(port)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited; see {log}")
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start; see {log}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def load(
    url: str, body: dict[str, Any], clients: int, seconds: float, requests: int
) -> dict[str, Any]:
    """``clients`` concurrent loops of POST /v1/explain, bounded in time and count."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    issued = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        for _ in range(2):  # warm the connections and the server's caches
            await asyncio.gather(*(client.post("/v1/explain", json=body) for _ in range(clients)))
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal issued
            while time.perf_counter() < deadline and issued < requests:
                issued += 1
                started = time.perf_counter()
                response = await client.post("/v1/explain", json=body)
                elapsed = time.perf_counter() - started
                statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
                if response.status_code == 200:
                    latencies.append(elapsed)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": sum(statuses.values()),
        "statuses": statuses,
        "seconds": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 1),
    }


def stream_timing(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """Seconds to the first event, the first section, and the answer, on one stream."""
    marks: dict[str, float] = {}
    started = time.perf_counter()
    with httpx.stream("POST", url + "/v1/explain/stream", json=body, timeout=900) as response:
        name = ""
        for line in response.iter_lines():
            now = time.perf_counter() - started
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
                marks.setdefault("first_event_s", now)
                if name not in ("status", "error"):
                    marks.setdefault("first_section_s", now)
                if name in ("answer", "error"):
                    marks["end_s"] = now
                    marks["outcome"] = name  # type: ignore[assignment]
    return {
        key: round(value, 3) if isinstance(value, float) else value for key, value in marks.items()
    }


def screenshot(url: str, path: Path) -> str:
    sys.path.insert(0, str(ROOT))
    from tests.integration.browser import Browser, find_chromium

    if find_chromium() is None:
        return "skipped: chromium is not installed (apt-get install chromium)"
    with Browser(width=1000, height=1200) as browser:
        page = browser.new_page()
        page.goto(url + "/")
        page.evaluate(
            "document.getElementById('bundle').value = "
            + json.dumps(SEED.read_text(encoding="utf-8"))
        )
        page.evaluate("document.getElementById('run').click()")
        page.wait_for(
            "document.body.dataset.state === 'idle' && "
            "!document.getElementById('validation').hidden",
            timeout=120,
        )
        page.screenshot(path)
        outside = [u for u in page.requests() if not u.startswith((url, "data:"))]
    return f"saved; requests off 127.0.0.1: {len(outside)}"


def local_llm(command: str) -> dict[str, str]:
    script = ROOT / "scripts" / "local-llm"
    done = subprocess.run([str(script), command], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return dict(
        line.removeprefix("export ").split("=", 1)
        for line in done.stdout.splitlines()
        if line.startswith("export ")
    )


def run_stub(env: dict[str, str], body: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The stub backend under load, its stream timing, and the seed page's screenshot."""
    result: dict[str, Any] = {}
    with service(env, RESULTS / "serve-stub.log") as url:
        health = httpx.get(url + "/healthz").json()
        result["server"] = {
            key: health[key]
            for key in ("embedding_model", "max_concurrent", "max_queue", "backend")
        }
        levels = []
        for clients in (int(c) for c in args.clients.split(",")):
            level = asyncio.run(load(url, body, clients, args.seconds, args.requests))
            level["load_after"] = round(os.getloadavg()[0], 2)
            levels.append(level)
            print(
                f"{clients:>3} clients: {level['requests_per_s']:>6} req/s  "
                f"p50 {level['p50_ms']:>7} ms  p95 {level['p95_ms']:>7} ms  "
                f"{level['statuses']}",
                flush=True,
            )
        result["explain"] = levels
        result["stream_stub"] = [stream_timing(url, body) for _ in range(5)]
        print(f"stream, stub: {result['stream_stub']}", flush=True)
        result["screenshot"] = screenshot(url, RESULTS / "serve-seed.png")
        print(f"screenshot: {result['screenshot']}", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="per concurrency level")
    parser.add_argument("--requests", type=int, default=400, help="per concurrency level")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--llm", action="store_true", help="time the stream with llama.cpp")
    parser.add_argument("--llm-runs", type=int, default=3)
    parser.add_argument(
        "--no-stub", action="store_true", help="skip the stub's load levels and the screenshot"
    )
    parser.add_argument("--out", default=str(RESULTS / "serve.json"))
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    body = {"bundle": SEED.read_text(encoding="utf-8")}
    # Enough queue for 32 clients: this measures throughput, not admission (see README).
    env = {"GROUNDED_ANSWER_SERVE__MAX_QUEUE": "64", "GROUNDED_ANSWER_LLM__BACKEND": "stub"}
    subprocess.run(
        [sys.executable, "-m", "grounded_answer.cli", "index", "--bundle", str(SEED)],
        check=True,
        env={**os.environ, **env},
    )
    result: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": [round(x, 2) for x in os.getloadavg()],
        },
    }
    if not args.no_stub:
        result.update(run_stub(env, body, args))
    if args.llm:
        exports = local_llm("start")
        try:
            # The response cache would answer every run after the first: off, then on for
            # two more runs to show what a cached answer costs.
            llm_env = {
                **exports,
                "GROUNDED_ANSWER_LLM__TIMEOUT": "900",
                "GROUNDED_ANSWER_LLM__CACHE": "false",
                "GROUNDED_ANSWER_LLM__MAX_TOKENS": "900",
                "GROUNDED_ANSWER_SERVE__REQUEST_TIMEOUT": "3600",
            }
            with service(llm_env, RESULTS / "serve-llm.log") as url:
                runs = [stream_timing(url, body) for _ in range(args.llm_runs)]
            cached_env = {**llm_env, "GROUNDED_ANSWER_LLM__CACHE": "true"}
            with service(cached_env, RESULTS / "serve-llm-cached.log") as url:
                cached = [stream_timing(url, body) for _ in range(2)]
            result["stream_llm"] = {
                "model": exports.get("GROUNDED_ANSWER_LLM__MODEL"),
                "runs": runs,
                "with_cache": cached,
            }
            print(f"stream, local LLM: {runs}; with the response cache: {cached}", flush=True)
        finally:
            subprocess.run([str(ROOT / "scripts" / "local-llm"), "stop"], check=False)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
