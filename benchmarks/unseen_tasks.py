"""A proxy for bundles whose tasks the task table never saw, with no held-out data spent.

    .venv/bin/python benchmarks/unseen_tasks.py [--bundles benchmarks/bundles/dev] [--rows]

Each labelled bundle is answered twice by the offline stub: as is, and with every task of
its own recommended models removed from the task table (and from the words that name
them), as if the table had never heard of them. The second run is what a model of a new
task looks like to the evidence plan: on dev its figures sit close to the held-out test
split's, so a change to the plan can be judged here first and on test only to report it.
Prints both overall rows (and per-bundle rows with ``--rows``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import tempfile
from pathlib import Path

import grounded_answer.sources.tasks as table
from grounded_answer.config import load_settings
from grounded_answer.evals.answers import BundleLabel, _overall, _score
from grounded_answer.planning.plan import _model_tasks
from grounded_answer.retrieval.retrieve import _RETRIEVERS
from grounded_answer.sources.bundle import load_bundle
from grounded_answer.sources.corpus import Role

ROOT = Path(__file__).resolve().parent.parent
KEYS = (
    "citation_recall",
    "citation_precision",
    "answerable_accuracy",
    "task_named",
    "models_cited",
    "models_in_workflow",
    "foreign_links",
)


_FULL = table._table()


def _reset(entries: tuple[tuple[re.Pattern[str], table.TaskHint], ...]) -> None:
    patched = dataclasses.replace(_FULL, tasks=entries)
    table._table = lambda: patched  # type: ignore[assignment]
    for cached in (table.expand_name, table._guess_tasks, table.tasks_in_order):
        cached.cache_clear()
    # A model's passages carry the tasks the table guesses for it: a retriever kept from the
    # other pass would leak them, so every bundle is indexed afresh.
    _RETRIEVERS.clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundles", type=Path, default=ROOT / "benchmarks/bundles/dev")
    parser.add_argument("--rows", action="store_true", help="per-bundle rows too")
    args = parser.parse_args()
    settings = load_settings()
    cache = Path(tempfile.mkdtemp(prefix="unseen-"))
    settings = settings.model_copy(
        update={
            "embedding": settings.embedding.model_copy(
                update={"export_dir": settings.embedding.export_dir or settings.index.cache_dir}
            ),
            "index": settings.index.model_copy(update={"cache_dir": cache}),
        }
    )
    labels = json.loads((args.bundles / "labels.json").read_text())
    full = _FULL.tasks
    report = {}
    for ablate in (False, True):
        scores = []
        for name, label in sorted(labels.items()):
            _reset(full)
            if ablate:
                bundle = load_bundle(args.bundles / name)
                own = {
                    hint.name
                    for source in bundle.corpus.sources
                    if source.role is Role.MODEL
                    for hint in _model_tasks(source)
                }
                _reset(tuple(entry for entry in full if entry[1].name not in own))
            score = _score(
                args.bundles / name, BundleLabel.model_validate(label), settings, None, None
            )
            scores.append(score)
            if args.rows:
                print(
                    f"{'unseen' if ablate else 'as is ':6} {name:40} R={score.recall} "
                    f"P={score.precision} answerable={score.answerable_correct} "
                    f"task={score.task_named}"
                )
        _reset(full)
        overall = _overall(scores)
        report["unseen tasks" if ablate else "as is"] = {k: overall[k] for k in KEYS}
    for which, figures in report.items():
        print(f"{which:13} {json.dumps(figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
