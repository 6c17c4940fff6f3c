"""Child process of the checkpoint tests (``python -m tests.unit.checkpoint.child_process <command> ...``).

Commands:

* ``run CONFIG STORE_DIR RUN_ID [--attempt N] [--partial]``: resume (or start) the run through
  ``load_checkpoint_for_resume`` + ``CheckpointHooks`` on a ``LocalCheckpointStore``; prints ``ready`` once
  everything is imported, then a JSON summary. Exit status 0 success, 1 pipeline failed, 3 a critical hook
  (the checkpoint) failed: stderr then holds ``CRITICAL <error type>: <message>``.
* ``save-loop STORE_DIR RUN_ID``: continue the run's checkpoint (a new attempt) and record one more
  completed component per ``save`` for ever, printing each index once its save returned.
* ``fingerprint CONFIG``: print the pipeline and component fingerprints as JSON.
* ``freeze-in-save STORE_DIR RUN_ID --at POINT [--lock-timeout S]``: attempt 1 of pipeline ``saver``
  records ``c0``, then stops itself (SIGSTOP) inside the save of ``c1``, holding the run's lock, at
  ``POINT``: ``before-append`` (about to append to the journal), ``after-tmp-written`` (a new snapshot
  written to its temp file), ``before-rename`` (about to rename it over the snapshot), or
  ``before-holder-written`` (right after taking the lock, before saying who holds it). Prints ``frozen``
  just before stopping; once continued, ``SAVED`` (exit 0) or ``REFUSED <type>: <message>`` (exit 3).
* ``take-over STORE_DIR RUN_ID --attempt N [--lock-timeout S] [--count K]``: attempt N (writer
  ``retry``) of pipeline ``saver``: records ``r0`` ... and completes; prints the completed components as
  JSON, or ``BUSY <message>`` (exit 4) when the lock stays held.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


def _new_attempt(state: CheckpointState, attempt: int, writer: str) -> None:
    state.begin_attempt(attempt, writer, pipeline_fingerprint="f" * 64, component_fingerprints={}, field_digests={})


def _arm_freeze(point: str) -> None:
    """Make the next write step at ``point`` stop this process (SIGSTOP) first, once."""
    from airflow_ppf.checkpoint import stores

    armed = [True]

    def freeze() -> None:
        if armed[0]:
            armed[0] = False
            print("frozen", flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)

    def before(real: Callable[..., Any], when: Callable[..., bool] = lambda *a: True) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            if when(*args):
                freeze()
            return real(*args)

        return wrapper

    if point == "before-append":
        stores._write_all = before(stores._write_all)  # type: ignore[attr-defined]
    elif point == "after-tmp-written":
        os.fsync = before(os.fsync, lambda fd: os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"))
    elif point == "before-rename":
        os.replace = before(os.replace, lambda src, dst: str(dst).endswith(".json"))
    elif point == "before-holder-written":
        real_flock = fcntl.flock

        def flock(fd: int, operation: int) -> None:
            real_flock(fd, operation)
            if operation & fcntl.LOCK_EX and os.readlink(f"/proc/self/fd/{fd}").endswith(".lock"):
                freeze()

        fcntl.flock = flock  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown point {point!r}")


def _freeze_in_save(args: argparse.Namespace) -> int:
    compact_every = 1 if args.at in ("after-tmp-written", "before-rename") else 256  # c1 compacts
    store = LocalCheckpointStore(Path(args.store), compact_every=compact_every, lock_timeout=args.lock_timeout)
    state = CheckpointState(run_id=args.run_id, pipeline_name="saver", pipeline_fingerprint="f" * 64)
    _new_attempt(state, 1, "zombie")
    store.save(state)
    state.record_completed("c0", 1)
    store.save(state)
    _arm_freeze(args.at)
    state.record_completed("c1", 1)
    try:
        store.save(state)
    except Exception as exc:
        print(f"REFUSED {type(exc).__name__}: {exc}", flush=True)
        return 3
    print("SAVED", flush=True)
    return 0


def _take_over(args: argparse.Namespace) -> int:
    from airflow_ppf.checkpoint import CheckpointBusyError

    store = LocalCheckpointStore(Path(args.store), lock_timeout=args.lock_timeout)
    state = store.load(args.run_id, "saver")
    if state is None:
        state = CheckpointState(run_id=args.run_id, pipeline_name="saver", pipeline_fingerprint="f" * 64)
    try:
        _new_attempt(state, args.attempt, "retry")
        store.save(state)
        for i in range(args.count):
            state.record_completed(f"r{i}", 1)
            store.save(state)
        state.finish_attempt("completed")
        store.save(state)
    except CheckpointBusyError as exc:
        print(f"BUSY {exc}", flush=True)
        return 4
    print(json.dumps(state.completed_components), flush=True)
    return 0


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
    freeze = sub.add_parser("freeze-in-save")
    freeze.add_argument("store")
    freeze.add_argument("run_id")
    freeze.add_argument("--at", required=True)
    freeze.add_argument("--lock-timeout", type=float, default=60.0)
    freeze.set_defaults(func=_freeze_in_save)
    take = sub.add_parser("take-over")
    take.add_argument("store")
    take.add_argument("run_id")
    take.add_argument("--attempt", type=int, required=True)
    take.add_argument("--lock-timeout", type=float, default=60.0)
    take.add_argument("--count", type=int, default=3)
    take.set_defaults(func=_take_over)
    fp = sub.add_parser("fingerprint")
    fp.add_argument("config")
    fp.set_defaults(func=_fingerprint)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
