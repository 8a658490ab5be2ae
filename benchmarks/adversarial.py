"""How the readers of untrusted text scale on adversarial input (issue 13: a regex that hangs).

    .venv/bin/python benchmarks/adversarial.py [--max 131072] [--out FILE.json]

Every case of ``tests/adversarial.py`` (bundle parser, link finder, link-field check,
injection screening, task names, model-output fences) is timed at doubling input sizes,
fastest of five runs each. The growth exponent is log2 of the time ratio between the two
largest sizes: about 1 is linear, 2 quadratic, 3 cubic. For contrast, the three patterns
that issue 13 found super-linear are timed too, as they were ("before" rows); they stop
at the first size that takes over a second.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.support.adversarial import CASES, Case, seconds  # noqa: E402

# The patterns issue 13 replaced, kept here only to show what the fix changed.
_OLD_SECTION = re.compile(r"^#{1,6}\s*(?P<name>.+?)\s*:?\s*$")
_OLD_SENTENCE = re.compile(r".*?(?:[.!?]+(?=\s|$)|\n|$)", re.DOTALL)
_OLD_FENCES = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)
BEFORE = (
    Case(
        "before",
        "heading pattern, runs of spaces",
        lambda n: "#" + " " * (n // 2) + "x" + " " * (n // 2) + "y",
        _OLD_SECTION.match,
    ),
    Case(
        "before",
        "sentence splitter, a run of full stops",
        lambda n: "a" + "." * n + "a",
        lambda text: list(_OLD_SENTENCE.finditer(text)),
    ),
    Case(
        "before",
        "code-fence pattern, unclosed fence",
        lambda n: "```" + " " * n + "x",
        _OLD_FENCES.match,
    ),
)


def curve(case: Case, start: int, largest: int, limit: float) -> list[dict[str, float]]:
    """Timings at doubling sizes until ``largest`` characters or ``limit`` seconds."""
    points = []
    n = start
    while n <= largest:
        took = seconds(case, n, repeats=5, budget=limit)
        points.append({"chars": n, "ms": round(took * 1e3, 4)})
        if took > limit:
            break
        n *= 2
    return points


def exponent(points: list[dict[str, float]]) -> float | None:
    """log2 of the last doubling's time ratio (None if too fast to tell)."""
    if len(points) < 2 or points[-2]["ms"] < 0.05:
        return None
    a, b = points[-2], points[-1]
    return round(math.log(b["ms"] / a["ms"]) / math.log(b["chars"] / a["chars"]), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min", type=int, default=1024, help="first input size (chars)")
    parser.add_argument("--max", type=int, default=131_072, help="largest input size (chars)")
    parser.add_argument("--out", default=str(HERE / "results" / "adversarial.json"))
    args = parser.parse_args()

    rows = []
    print(f"{'reader':<11} {'case':<40} {'chars':>8} {'ms':>10} {'exp':>5}")
    for case in (*CASES, *BEFORE):
        limit = 1.0 if case.target == "before" else 10.0
        points = curve(case, args.min if case.target != "before" else 128, args.max, limit)
        growth = exponent(points)
        rows.append(
            {"target": case.target, "case": case.name, "points": points, "exponent": growth}
        )
        last = points[-1]
        shown = "-" if growth is None else f"{growth:.2f}"
        print(
            f"{case.target:<11} {case.name:<40} {last['chars']:>8} {last['ms']:>10.3f} {shown:>5}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "python": platform.python_version(),
                "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
                "cases": rows,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
