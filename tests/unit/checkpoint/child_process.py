"""Child process of the checkpoint tests (``python -m tests.unit.checkpoint.child_process <command> ...``).

Commands:

* ``run CONFIG STORE_DIR RUN_ID [--attempt N] [--partial]``: resume (or start) the run through
  ``load_checkpoint_for_resume`` + ``CheckpointHooks`` on a ``LocalCheckpointStore``; prints ``ready`` once
  everything is imported, then a JSON summary. Exit status 0 success, 1 pipeline failed, 3 a critical hook
  (the checkpoint) failed: stderr then holds ``CRITICAL <error type>: <message>``.
* ``save-loop STORE_DIR RUN_ID``: continue the run's checkpoint (a new attempt) and record one more
  completed component per ``save`` for ever, printing each index once its save returned.
* ``fingerprint CONFIG``: print the pipeline and component fingerprints as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from airflow_ppf.config import PipelineConfig
from airflow_ppf.runner import (
    CheckpointHooks,
    CompositeHooks,
    CriticalHookError,
    LocalCheckpointStore,
    LoggingHooks,
    SimplePipelineRunner,
    compute_pipeline_fingerprint,
    load_checkpoint_for_resume,
)
from airflow_ppf.runner.checkpoint import CheckpointState, compute_component_fingerprints


def _run(args: argparse.Namespace) -> int:
    config = PipelineConfig.from_file(args.config)
    store = LocalCheckpointStore(Path(args.store))
    completed = load_checkpoint_for_resume(store, args.run_id, config, partial=args.partial)
    checkpoint = CheckpointHooks(
        store,
        run_id=args.run_id,
        pipeline_fingerprint=compute_pipeline_fingerprint(config),
        attempt=args.attempt,
        on_config_change="partial" if args.partial else "restart",
    )
    runner = SimplePipelineRunner(config, hooks=CompositeHooks(LoggingHooks(), checkpoint))
    print("ready", flush=True)
    try:
        result = runner.run(completed_components=completed)
    except CriticalHookError as exc:
        print(f"CRITICAL {type(exc.error).__name__}: {exc.error}", file=sys.stderr, flush=True)
        return 3
    summary = {
        "status": result.status.value,
        "skipped": result.skipped_components,
        "completed": result.completed_components,
    }
    print(json.dumps(summary), flush=True)
    return 0 if result.success else 1


def _save_loop(args: argparse.Namespace) -> int:
    store = LocalCheckpointStore(Path(args.store), compact_every=args.compact_every)
    state = store.load(args.run_id, "saver")
    if state is None:
        state = CheckpointState(run_id=args.run_id, pipeline_name="saver", pipeline_fingerprint="f" * 64)
    start = len(state.completed_components)
    state.begin_attempt(
        state.attempt + 1,
        f"saver-{state.attempt + 1}",
        pipeline_fingerprint="f" * 64,
        component_fingerprints={},
        field_digests={},
    )
    store.save(state)
    print("ready", flush=True)
    index = start
    while True:
        # Growing payloads make snapshot rewrites (every compact_every saves) slower: more to hit.
        state.record_completed(f"c{index}", index, outputs=[{"view": f"v{index}", "pad": "x" * (index % 50) * 20}])
        store.save(state)
        print(index, flush=True)
        index += 1


def _fingerprint(args: argparse.Namespace) -> int:
    config = PipelineConfig.from_file(args.config)
    print(
        json.dumps(
            {"pipeline": compute_pipeline_fingerprint(config), "components": compute_component_fingerprints(config)}
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("config")
    run.add_argument("store")
    run.add_argument("run_id")
    run.add_argument("--attempt", type=int, default=None)
    run.add_argument("--partial", action="store_true")
    run.set_defaults(func=_run)
    loop = sub.add_parser("save-loop")
    loop.add_argument("store")
    loop.add_argument("run_id")
    loop.add_argument("--compact-every", type=int, default=8)
    loop.set_defaults(func=_save_loop)
    fp = sub.add_parser("fingerprint")
    fp.add_argument("config")
    fp.set_defaults(func=_fingerprint)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
