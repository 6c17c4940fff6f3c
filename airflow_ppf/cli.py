"""``ppf``: validate and run pipelines, inspect and clear checkpoints.

Exit codes: 0 success, 1 the pipeline failed, 2 bad input (config, arguments, damaged checkpoint,
unusable checkpoint folder), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM). User errors print one
clear message, never a traceback (``--debug`` shows it). A reader that closes stdout early
(``ppf run … | head -1``) stops the output, not the run: the exit code stays the run's.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import re
import shlex
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Literal, cast

from airflow_ppf import __version__
from airflow_ppf.checkpoint import (
    CheckpointCorruptError,
    CheckpointedRun,
    CheckpointError,
    CheckpointFencedError,
    CheckpointState,
    CheckpointVersionError,
    LocalCheckpointStore,
    OnConfigChange,
    ResumePlan,
    ResumePolicy,
    forget_checkpoint,
    predict_next_attempt,
)
from airflow_ppf.config import ConfigError, PipelineConfig
from airflow_ppf.runner import NoOpHooks, PipelineResult, SimplePipelineRunner
from airflow_ppf.runner.hooks import CriticalHookError, RunPlan
from airflow_ppf.runner.report import describe_error, format_seconds, format_table
from airflow_ppf.runner.results import ComponentStatus

if TYPE_CHECKING:
    from airflow_ppf.config.models import ComponentConfig

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_SIGNAL_BASE = 128  # + the signal number: 143 for SIGTERM
DEFAULT_CHECKPOINT_DIR = ".ppf/checkpoints"

_STATUS_MARK = {
    ComponentStatus.SUCCESS: "✓ done",
    ComponentStatus.SKIPPED: "↷ skipped",
    ComponentStatus.FAILED: "✗ failed",
    ComponentStatus.BLOCKED: "· blocked",
    ComponentStatus.NOT_RUN: "· not run",
    ComponentStatus.DISABLED: "· disabled",
    ComponentStatus.INTERRUPTED: "! interrupted",
}


class UsageError(Exception):
    """Bad command-line input (exit code 2)."""


class Terminated(BaseException):
    """A SIGTERM arrived (a scheduler, ``timeout``, Kubernetes): the run stops as on Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while the block runs, so the run stops like on Ctrl-C: the
    checkpoint is marked interrupted and the exit code is 143. Later SIGTERMs are ignored meanwhile (the
    stop must not be cut short; a SIGKILL still ends it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ReaderSafeOutput:
    """Standard output that outlives its reader: once the reader closed the pipe (``| head -1``), the rest
    of the output goes to ``/dev/null``, and the run goes on (its result and checkpoint are kept)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        #: Whether the reader went away.
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._discard_from_now_on()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._discard_from_now_on()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def _discard_from_now_on(self) -> None:
        self.reader_gone = True
        # What is still buffered (and Python's final flush at exit) must not fail again.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)


class ConsoleProgress(NoOpHooks):
    """Print one line per component as the run goes (``[3/7] clean ✓ 2.1 s``)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.tty = out.isatty()
        #: Print the plan (a first run of a run id has nothing to say beyond "running all").
        self.show_plan = True

    def _print(self, text: str, end: str = "\n") -> None:
        self.out.write(text + end)
        self.out.flush()

    def on_resume_plan(self, plan: RunPlan) -> None:
        if self.show_plan:
            self._print(plan.format_table() + "\n")

    def before_component(self, config: ComponentConfig, index: int, total: int) -> None:
        self._print(f"[{index + 1}/{total}] {config.name} …", end="" if self.tty else "\n")

    def after_component(self, config: ComponentConfig, index: int, total: int, duration_ms: int) -> None:
        prefix = "\r" if self.tty else ""
        self._print(f"{prefix}[{index + 1}/{total}] {config.name} ✓ {format_seconds(duration_ms / 1000)}")

    def on_component_failure(self, config: ComponentConfig, index: int, error: BaseException) -> None:
        prefix = "\r" if self.tty else ""
        self._print(f"{prefix}[{index + 1}] {config.name} ✗ {describe_error(error)}")

    def on_component_skipped(self, config: ComponentConfig, index: int, total: int, reason: str) -> None:
        self._print(f"[{index + 1}/{total}] {config.name} skipped ({reason})")

    def on_retry_attempt(
        self, config: ComponentConfig, attempt: int, max_attempts: int, delay_ms: int, error: BaseException
    ) -> None:
        prefix = "\r" if self.tty else ""
        self._print(
            f"{prefix}    {config.name}: attempt {attempt}/{max_attempts} failed ({type(error).__name__}); "
            f"retrying in {format_seconds(delay_ms / 1000)}"
        )


# -- argument parsing ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ppf",
        description="Run configuration-driven PySpark pipelines with checkpoint & resume.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _debug_option(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    var_help = "a pipeline variable: ${NAME} in the config (repeatable)"
    validate = sub.add_parser("validate", help="check a pipeline config and its component classes")
    _debug_option(validate)
    validate.add_argument("config", help="pipeline config file (.conf/.hocon, .json, .yaml)")
    validate.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help=var_help)
    validate.add_argument(
        "--no-classes", action="store_true", help="check the config only, without importing component classes"
    )

    run = sub.add_parser("run", help="run a pipeline (and resume it from its checkpoint)")
    _debug_option(run)
    run.add_argument("config", help="pipeline config file (.conf/.hocon, .json, .yaml)")
    run.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help=var_help)
    run.add_argument("--run-id", help="checkpoint run id (default: a new id, printed at the start)")
    _checkpoint_dir_option(run, default=None)
    run.add_argument("--no-checkpoint", action="store_true", help="run without recording progress")
    run.add_argument("--resume", action="store_true", help="skip the components the checkpoint has as done")
    run.add_argument(
        "--attempt",
        type=int,
        metavar="N",
        help="this attempt's number, as a scheduler counts tries (1, 2, ...); a higher number fences off a "
        "lower one still running. Default: the stored attempt + 1",
    )
    run.add_argument(
        "--on-corrupt-checkpoint",
        choices=["fail", "restart"],
        help="a damaged checkpoint: stop (fail) or move it aside and start over (restart). "
        "Default: restart without --resume, fail with it",
    )
    run.add_argument(
        "--on-config-change",
        choices=[m.value for m in OnConfigChange],
        default=OnConfigChange.RESTART.value,
        help="when the pipeline changed since the checkpoint: start over (restart), rerun only what "
        "changed (partial), or stop (fail)",
    )
    run.add_argument("--no-fail-fast", action="store_true", help="keep running independent components after a failure")
    run.add_argument("--master", help="Spark master URL (overrides the config's spark.master)")
    run.add_argument(
        "--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark property (repeatable)"
    )
    run.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")

    checkpoints = sub.add_parser("checkpoints", help="list, show or clear checkpoints")
    _debug_option(checkpoints)
    _checkpoint_dir_option(checkpoints, default=None)
    cp_sub = checkpoints.add_subparsers(dest="action", required=True, metavar="ACTION")
    cp_list = cp_sub.add_parser("list", help="list stored checkpoints")
    cp_list.add_argument("--pipeline", help="only this pipeline")
    cp_show = cp_sub.add_parser("show", help="show one checkpoint and its attempts history")
    cp_show.add_argument("run_id")
    cp_show.add_argument("--pipeline", help="pipeline name (needed when the run id is used by several)")
    cp_show.add_argument("--json", action="store_true", help="print the raw checkpoint document")
    cp_show.add_argument("--config", help="also show the resume plan against this config")
    cp_show.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help=var_help)
    cp_clear = cp_sub.add_parser("clear", help="delete a checkpoint (the next run starts from the beginning)")
    cp_clear.add_argument("run_id")
    cp_clear.add_argument("--pipeline", help="pipeline name (needed when the run id is used by several)")
    for action in (cp_list, cp_show, cp_clear):
        # `ppf checkpoints list --checkpoint-dir X` works as well as `ppf checkpoints --checkpoint-dir X list`
        _debug_option(action)
        _checkpoint_dir_option(action)
    return parser


def _debug_option(parser: argparse.ArgumentParser, default: object = argparse.SUPPRESS) -> None:
    """``--debug`` before or after the command; a later level only sets it, never resets it."""
    parser.add_argument("--debug", action="store_true", default=default, help="show tracebacks and debug logs")


def _checkpoint_dir_option(parser: argparse.ArgumentParser, default: object = argparse.SUPPRESS) -> None:
    parser.add_argument(
        "--checkpoint-dir",
        default=default,
        help=f"where checkpoints live (default: $PPF_CHECKPOINT_DIR or {DEFAULT_CHECKPOINT_DIR})",
    )


def _checkpoint_dir(arg: str | None) -> Path:
    _check_not_blank(arg, "--checkpoint-dir", f"omit it for $PPF_CHECKPOINT_DIR or {DEFAULT_CHECKPOINT_DIR}")
    return Path(arg or os.environ.get("PPF_CHECKPOINT_DIR") or DEFAULT_CHECKPOINT_DIR)


def _check_not_blank(value: str | None, what: str, hint: str | None = None) -> None:
    """Refuse an empty or blank argument (instead of silently using a default in its place); ``hint``, in
    parentheses after the message, says what to do instead."""
    if value is not None and not value.strip():
        raise UsageError(f"{what} must not be empty" + (f" ({hint})" if hint else ""))


def _parse_pairs(pairs: Sequence[str], option: str, *, names: re.Pattern[str] | None = None) -> dict[str, str]:
    """``["A=1", "B=x=y"]`` → ``{"A": "1", "B": "x=y"}``; a pair without ``=`` (or a bad name) is a usage error."""
    parsed: dict[str, str] = {}
    what = "NAME=VALUE" if names is not None else "KEY=VALUE"
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} expects {what}, got {pair!r}")
        if names is not None and not names.fullmatch(key.strip()):
            raise UsageError(f"{option} {pair!r}: {key.strip()!r} is not a variable name (letters, digits, _)")
        parsed[key.strip()] = value
    return parsed


_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _load_config(path: str, var_pairs: Sequence[str]) -> PipelineConfig:
    """Load the config with its ``--var`` values; its folder goes on the import path (as Airflow does for a
    DAG folder), so components defined next to it import."""
    variables = _parse_pairs(var_pairs, "--var", names=_VAR_NAME)
    folder = str(Path(path).resolve().parent)
    if folder not in sys.path:
        sys.path.append(folder)
    return PipelineConfig.from_file(path, variables=variables)


# -- commands -----------------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace, out: IO[str]) -> int:
    config = _load_config(args.config, args.var)
    if not args.no_classes:
        runner = SimplePipelineRunner(config)
        runner.build_components({c.name for c in config.components if c.enabled})
    order = " → ".join(config.get_execution_order())
    disabled = [c.name for c in config.components if not c.enabled]
    out.write(f"OK: pipeline {config.name!r}, {len(config.components)} components\n  order: {order}\n")
    if disabled:
        out.write(f"  disabled: {', '.join(disabled)}\n")
    return EXIT_OK


def cmd_run(args: argparse.Namespace, out: IO[str]) -> int:
    config = _load_config(args.config, args.var)
    extra_conf = _parse_pairs(args.conf, "--conf")
    if args.master or extra_conf:
        spark = replace(
            config.spark,
            master=args.master or config.spark.master,
            remote=None if args.master else config.spark.remote,
            spark_conf={**config.spark.spark_conf, **extra_conf},
        )
        config = replace(config, spark=spark)
    _check_not_blank(args.run_id, "--run-id")
    if args.attempt is not None and args.attempt < 1:
        raise UsageError(f"--attempt must be 1 or more, got {args.attempt}")
    if args.resume and args.no_checkpoint:
        raise UsageError("--resume needs a checkpoint; drop --no-checkpoint")
    if args.resume and not args.run_id:
        raise UsageError("--resume needs --run-id (the id printed by the run to resume)")

    run_id = args.run_id or f"ppf-{dt.datetime.now().strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    progress = ConsoleProgress(out)
    if args.no_checkpoint:
        out.write(f"Pipeline {config.name!r} (no checkpoint)\n")
        with SimplePipelineRunner(
            config, hooks=progress, fail_fast=not args.no_fail_fast, context={"run_id": run_id}
        ) as runner:
            result = runner.run()
        _print_result(result, out, as_json=args.json)
        return EXIT_OK if result.success else EXIT_FAILED

    store = LocalCheckpointStore(_checkpoint_dir(args.checkpoint_dir))
    # A run that does not resume has no use for a damaged checkpoint: it moves it aside and starts over.
    on_corrupt: Literal["fail", "restart"] = args.on_corrupt_checkpoint or ("fail" if args.resume else "restart")
    run = CheckpointedRun(
        config,
        store,
        run_id,
        policy=ResumePolicy(
            resume=args.resume,
            on_config_change=OnConfigChange(args.on_config_change),
            forget_on_fresh_start=False,
            no_resume_reason="--resume not given (every component runs again)",
        ),
        attempt=args.attempt,
        on_corrupt_checkpoint=on_corrupt,
        progress=progress,
        fail_fast=not args.no_fail_fast,
    )
    try:
        try:
            plan = run.prepare()
        except CheckpointFencedError as exc:
            if args.attempt is None:
                raise
            raise UsageError(f"{exc} (--attempt {exc.stored_attempt + 1} or higher takes over)") from None
        out.write(
            f"Pipeline {config.name!r} · run id {run_id} · attempt {run.attempt_number} · "
            f"checkpoints in {store.base_dir}\n"
        )
        for note in run.forgotten:
            out.write(f"Note: {note}\n")
        progress.show_plan = plan.previous_attempt > 0
        try:
            result = run.run()
        except CriticalHookError as exc:
            out.write(f"\nThe run is stopped: its checkpoint could not be kept: {exc.error}\n")
            if exc.result is not None:
                _print_result(exc.result, out, as_json=args.json)
            return EXIT_FAILED
    finally:
        run.close()
    _print_result(result, out, as_json=args.json, plan=run.plan)
    if not result.success:
        out.write(
            f"\nResume with: ppf run {args.config} --run-id {run_id} --resume"
            + (f" --checkpoint-dir {args.checkpoint_dir}" if args.checkpoint_dir else "")
            + "".join(f" --var {shlex.quote(v)}" for v in args.var)
            + "\n"
        )
    return EXIT_OK if result.success else EXIT_FAILED


def _print_result(
    result: PipelineResult, out: IO[str], *, as_json: bool = False, plan: ResumePlan | None = None
) -> None:
    if as_json:
        doc = result.to_dict()
        if plan is not None:
            doc["resume"] = plan.summary()
        out.write(json.dumps(doc, indent=2) + "\n")
        return
    rows = []
    for r in result.component_results:
        note = r.reason or ""
        if r.error is not None:
            note = describe_error(r.error)
        duration = format_seconds(r.duration_seconds) if r.attempts else ""
        rows.append((r.component_name, _STATUS_MARK.get(r.status, r.status.value), duration, r.attempts or "", note))
    out.write("\n" + format_table(["component", "status", "time", "attempts", "note"], rows) + "\n")
    line = (
        f"\n{result.status.value.upper()} in {format_seconds(result.total_duration_seconds)}: "
        f"{len(result.completed_components)} ran, {len(result.skipped_components)} skipped, "
        f"{len(result.failed_components)} failed"
    )
    if plan is not None and plan.is_resume:
        line += f"; resuming {plan.savings()}"
    out.write(line + "\n")


def cmd_checkpoints(args: argparse.Namespace, out: IO[str]) -> int:
    store = LocalCheckpointStore(_checkpoint_dir(args.checkpoint_dir))
    _check_not_blank(getattr(args, "run_id", None), "the run id")
    if store.base_dir.exists() and not store.base_dir.is_dir():
        raise UsageError(f"checkpoint folder {store.base_dir} is a file, not a folder")
    if args.action == "list":
        runs = store.list_runs(args.pipeline)
        if not runs:
            out.write(f"No checkpoints in {store.base_dir}\n")
            return EXIT_OK
        rows = [
            (i.run_id, i.pipeline_name, f"damaged: {i.problem}", "", "", "")
            if i.problem
            else (i.run_id, i.pipeline_name, i.status, i.attempt, i.completed, i.updated_at)
            for i in runs
        ]
        out.write(format_table(["run id", "pipeline", "status", "attempt", "done", "updated"], rows) + "\n")
        return EXIT_OK
    if args.action == "show":
        state = store.load(args.run_id, args.pipeline)
        if state is None:
            raise UsageError(f"no checkpoint for run id {args.run_id!r} in {store.base_dir}")
        if args.json:
            out.write(json.dumps(state.to_dict(), indent=2) + "\n")
            return EXIT_OK
        out.write(render_checkpoint(state) + "\n")
        if args.config:
            plan = predict_next_attempt(state, _load_config(args.config, args.var))
            out.write("\nWhat the next attempt with --resume does:\n" + plan.format_table() + "\n")
        return EXIT_OK
    with store.exclusive_use(args.run_id, args.pipeline):  # refused while the run is running
        return clear_checkpoint(store, args.run_id, args.pipeline, out)


def clear_checkpoint(store: LocalCheckpointStore, run_id: str, pipeline: str | None, out: IO[str]) -> int:
    """Delete a checkpoint and its saved views; a damaged one (that does not load) is moved aside."""
    damage: str | None = None
    try:
        state = store.load(run_id, pipeline)
    except (CheckpointCorruptError, CheckpointVersionError) as exc:
        state, damage = None, exc.problem
    if state is None:
        moved = store.quarantine(run_id, pipeline)  # also finds a damaged one by its file name alone
        if not moved:
            out.write(f"No checkpoint for run id {run_id!r} in {store.base_dir}\n")
            return EXIT_OK
        why = f" ({damage})" if damage else ""
        out.write(f"Moved the damaged checkpoint aside{why}, for inspection: {', '.join(map(str, moved))}\n")
    else:
        for done in forget_checkpoint(store, state):
            if done.startswith("deleted the checkpoint"):
                continue
            out.write(done[0].upper() + done[1:] + "\n")
    out.write(f"Cleared the checkpoint of run {run_id!r}: its next run starts from the beginning\n")
    return EXIT_OK


def render_checkpoint(state: CheckpointState) -> str:
    """Render a checkpoint for people: header, completed components, attempts history."""
    lines = [
        f"Run {state.run_id!r} of pipeline {state.pipeline_name!r}: {state.status}",
        f"  fingerprint {state.pipeline_fingerprint[:16]}…  created {state.created_at}  updated {state.updated_at}",
    ]
    if state.completed_components:
        rows = [
            (n, state.components[n].attempt, format_seconds(state.components[n].duration_ms / 1000))
            if n in state.components
            else (n, "", "")
            for n in state.completed_components
        ]
        lines += [
            "",
            "Completed components (in completion order):",
            format_table(["component", "attempt", "time"], rows),
        ]
    if state.attempts:
        history: list[tuple[object, ...]] = []
        for a in state.attempts:
            error = f"{a.failed}: {a.error_type}: {a.error_message}" if a.failed else ""
            ran_ms = sum(a.durations_ms.get(n, 0) for n in a.ran)
            history.append(
                (a.attempt, a.status, a.started_at, len(a.ran), len(a.skipped), format_seconds(ran_ms / 1000), error)
            )
        lines += [
            "",
            "Attempts:",
            format_table(["attempt", "status", "started", "ran", "skipped", "time", "failure"], history),
        ]
        for a in state.attempts:
            if a.ran or a.skipped:
                lines.append(
                    f"  attempt {a.attempt}: ran {', '.join(a.ran) or '-'}; skipped {', '.join(a.skipped) or '-'}"
                )
    return "\n".join(lines)


class BriefFormatter(logging.Formatter):
    """Log lines without traceback dumps: where the error was raised, and how to see the whole traceback.

    The progress line and the final table already give the error's type and message; a component's failure
    (or any logged exception) adds one line naming the innermost frame outside Spark's Python layers.
    """

    def format(self, record: logging.LogRecord) -> str:
        if not record.exc_info or record.exc_info[1] is None:
            return super().format(record)
        brief = logging.makeLogRecord(record.__dict__)
        brief.exc_info = brief.exc_text = None
        brief.stack_info = None
        where = raised_at(record.exc_info[1])
        return super().format(brief) + (f" (raised at {where}; ppf --debug shows the traceback)" if where else "")


def raised_at(error: BaseException) -> str | None:
    """``file:line in function`` of the innermost frame of ``error`` that is not Spark's or py4j's own code."""
    frames = traceback.extract_tb(error.__traceback__)
    own = [f for f in frames if not any(f"{os.sep}{lib}{os.sep}" in f.filename for lib in ("pyspark", "py4j"))]
    if not frames:
        return None
    frame = (own or frames)[-1]
    path = Path(frame.filename)
    with contextlib.suppress(ValueError):
        path = path.resolve().relative_to(Path.cwd().resolve())
    return f"{path}:{frame.lineno} in {frame.name}"


# -- entry point --------------------------------------------------------------------------------------

_COMMANDS = {"validate": cmd_validate, "run": cmd_run, "checkpoints": cmd_checkpoints}


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    """Run the ``ppf`` command line; return its exit code."""
    stream = cast(IO[str], ReaderSafeOutput(out or sys.stdout))
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    log_format = "%(levelname)s %(name)s: %(message)s"
    handler.setFormatter(logging.Formatter(log_format) if args.debug else BriefFormatter(log_format))
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, handlers=[handler])
    try:
        with stop_on_sigterm() if args.command == "run" else contextlib.nullcontext():
            return _COMMANDS[args.command](args, stream)
    except ConfigError as exc:
        sys.stderr.write(f"ppf: {exc}\n")
        return EXIT_BAD_INPUT
    except (UsageError, CheckpointError) as exc:
        sys.stderr.write(f"ppf: {exc}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("ppf: interrupted\n")
        return EXIT_INTERRUPTED
    except Terminated as exc:
        sys.stderr.write(f"ppf: terminated ({signal.Signals(exc.signum).name}); the checkpoint is kept\n")
        return EXIT_SIGNAL_BASE + exc.signum
    except Exception as exc:
        if args.debug:
            raise
        sys.stderr.write(f"ppf: unexpected error: {type(exc).__name__}: {exc} (run with --debug for details)\n")
        return EXIT_FAILED
