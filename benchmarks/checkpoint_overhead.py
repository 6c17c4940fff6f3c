"""What checkpointing costs: ``python benchmarks/checkpoint_overhead.py [--runs N]`` prints two tables.

(a) A 20-component pipeline of components that do nothing, run N times without checkpointing and with
    ``CheckpointHooks`` on a ``LocalCheckpointStore``, interleaved (alternating which goes first) so that
    drift in machine load hits both alike. Medians, their ratio, and the checkpoint cost per component.
    Two diagnostic rows say where the time goes: the same store with ``os.fsync`` stubbed out (never do
    this for real: it is what makes a checkpoint survive a crash) and the in-memory store.
(b) Pipelines of 250, 1,000 and 10,000 components, on the local and the in-memory store: the Python time
    of each completion's bookkeeping (recording it and saving it, with fsync stubbed out; and with it, up
    to 1,000), the per-run work (fingerprints, planning, the first and last saves) and the final load, to
    show that they grow linearly.

No component does any work, so (a) is the worst case: with real Spark components (seconds each) the
same absolute cost per component is a vanishing fraction.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow_ppf.components import Component
from airflow_ppf.config import PipelineConfig
from airflow_ppf.runner import (
    CheckpointHooks,
    CheckpointState,
    InMemoryCheckpointStore,
    LocalCheckpointStore,
    NoOpHooks,
    SimplePipelineRunner,
)


class Noop(Component):
    """A component that does nothing (its config, e.g. ``sql``, only feeds the fingerprint)."""

    def __init__(self, **config: Any) -> None:
        self.config = config

    def run(self) -> None:
        pass


NOOP = f"{__name__}.Noop"


def pipeline(size: int) -> PipelineConfig:
    """``size`` components; each depends on the previous one and on the one at half its index."""
    components = []
    for i in range(size):
        deps = sorted({f"c{i - 1:04d}", f"c{i // 2:04d}"} - {f"c{i:04d}"}) if i else []
        components.append(
            {"name": f"c{i:04d}", "class_path": NOOP, "config": {"sql": f"select {i} from t"}, "depends_on": deps}
        )
    return PipelineConfig.from_dict({"name": f"bench-{size}", "components": components})


@contextmanager
def fsync_stubbed() -> Iterator[None]:
    real = os.fsync
    os.fsync = lambda fd: None
    try:
        yield
    finally:
        os.fsync = real


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# -- (a) overhead on a small pipeline -------------------------------------------------------------------------


def overhead(runs: int, base: Path) -> None:
    config = pipeline(20)
    local = LocalCheckpointStore(base / "a-local")
    memory = InMemoryCheckpointStore()
    counter = iter(range(10**9))

    def plain() -> None:
        SimplePipelineRunner(config).run()

    def checkpointed(store: Any) -> Callable[[], None]:
        def run() -> None:
            hooks = CheckpointHooks(store, run_id=f"run-{next(counter)}")
            SimplePipelineRunner(config, hooks=hooks).run()

        return run

    def local_no_fsync() -> None:
        with fsync_stubbed():
            checkpointed(local)()

    variants: dict[str, Callable[[], None]] = {
        "no checkpoint": plain,
        "LocalCheckpointStore": checkpointed(local),
        "  diagnostic: fsync stubbed": local_no_fsync,
        "  diagnostic: InMemoryCheckpointStore": checkpointed(memory),
    }
    for fn in variants.values():  # warm up imports, caches, the file system
        for _ in range(5):
            fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for i in range(runs):
        order = names if i % 2 == 0 else list(reversed(names))
        for name in order:
            times[name].append(timed(variants[name]))

    base_ms = statistics.median(times["no checkpoint"]) * 1000
    print(f"(a) 20 components that do nothing, {runs} interleaved runs of each (medians)")
    print(f"    {'variant':<40}{'run (ms)':>10}{'ratio':>9}{'checkpoint cost / component':>30}")
    for name in names:
        ms = statistics.median(times[name]) * 1000
        per_comp_us = (ms - base_ms) * 1000 / 20
        cost = "" if name == "no checkpoint" else f"{per_comp_us:,.0f} µs"
        print(f"    {name:<40}{ms:>10.2f}{ms / base_ms:>9.2f}{cost:>30}")

    durable_us = (statistics.median(times["LocalCheckpointStore"]) * 1000 - base_ms) * 1000 / 20
    print(
        f"    => with components that take 1 s each (a small Spark job) that is {durable_us / 1e4:.2f} % overhead; "
        f"the 1.05 goal holds for components of {durable_us / 0.05 / 1000:.0f} ms or more"
    )
    # Where one component's checkpoint goes: a single durable append, and a bare fsync.
    state = CheckpointState(run_id="probe", pipeline_name="probe", pipeline_fingerprint="f" * 64)
    state.begin_attempt(1, "probe", pipeline_fingerprint="f" * 64, component_fingerprints={}, field_digests={})
    local.save(state)
    probe = base / "fsync-probe"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    appends, fsyncs = [], []
    try:
        for i in range(200):  # alternate, so that both see the same disk
            state.record_completed(f"c{i}", 1, fingerprint="0" * 16)
            appends.append(timed(lambda: local.save(state)))
            fsyncs.append(timed(lambda: (os.write(fd, b"x" * 200), os.fsync(fd))))
    finally:
        os.close(fd)
    print(
        f"    one component's journal append (save): {statistics.median(appends) * 1e6:,.0f} µs median, "
        f"of which a bare write+fsync on this disk is {statistics.median(fsyncs) * 1e6:,.0f} µs"
    )
    print()


# -- (b) growth with pipeline size --------------------------------------------------------------------------

#: Hook methods called once per component (the bookkeeping of a completion), and once per run (setup, end).
PER_COMPONENT = ("before_component", "after_component", "on_component_skipped")


class TimedHooks(NoOpHooks):
    """Forward every event to ``inner`` and add up the time spent in it, per hook method.

    ``clock`` is ``time.thread_time`` (CPU time of this thread: what the Python code costs, which other
    processes on a busy machine do not inflate) or ``time.perf_counter`` (wall time, with I/O waits).
    """

    def __init__(self, inner: CheckpointHooks, clock: Callable[[], float]) -> None:
        self.inner = inner
        self.critical = True
        self.clock = clock
        self.seconds: dict[str, float] = {}

    def __getattribute__(self, name: str) -> Any:
        if name.startswith(("before_", "after_", "on_", "prepare_")):
            method = getattr(object.__getattribute__(self, "inner"), name)
            seconds = object.__getattribute__(self, "seconds")
            clock = object.__getattribute__(self, "clock")

            def call(*args: Any) -> Any:
                start = clock()
                try:
                    return method(*args)
                finally:
                    seconds[name] = seconds.get(name, 0.0) + clock() - start

            return call
        return object.__getattribute__(self, name)


def one_run(
    config: PipelineConfig, store: Any, clock: Callable[[], float] = time.thread_time
) -> tuple[float, float, float]:
    """Run ``config`` once with checkpointing; return seconds of (per-component hooks, per-run hooks, final load)."""
    hooks = TimedHooks(CheckpointHooks(store, run_id="run"), clock)
    SimplePipelineRunner(config, hooks=hooks).run()
    start = clock()
    store.load("run", config.name)
    load_s = clock() - start
    per_component = sum(v for k, v in hooks.seconds.items() if k in PER_COMPONENT)
    per_run = sum(v for k, v in hooks.seconds.items() if k not in PER_COMPONENT)
    return per_component, per_run, load_s


def growth(sizes: list[int], base: Path, reps: int = 3) -> None:
    print(f"(b) checkpoint bookkeeping of one run, by pipeline size (median of {reps} runs): CPU time with fsync")
    print("    stubbed per completion (the recorder's before/after_component: record + save), per run (prepare,")
    print("    fingerprints, first and last saves) and of the final load; the last column is wall time with fsync")
    print(
        f"    {'store':<22}{'components':>10}{'per completion':>16}{'per run':>10}{'/ comp.':>9}{'load':>9}"
        f"{'with fsync: per completion':>28}"
    )
    stores: dict[str, Callable[[Path], Any]] = {
        "LocalCheckpointStore": LocalCheckpointStore,
        "InMemoryCheckpointStore": lambda folder: InMemoryCheckpointStore(),
    }
    for size in sizes:
        config = pipeline(size)
        for name, make in stores.items():
            rows, durable = [], []
            for rep in range(reps):
                with fsync_stubbed():
                    rows.append(one_run(config, make(base / f"b-{name}-{size}-{rep}")))
                if name == "LocalCheckpointStore" and size <= 1000:
                    durable.append(one_run(config, make(base / f"b-{name}-{size}-{rep}-fsync"), time.perf_counter)[0])
            comp_s, run_s, load_s = (statistics.median(col) for col in zip(*rows, strict=True))
            with_fsync = f"{statistics.median(durable) * 1e6 / size:,.0f} µs" if durable else "-"
            print(
                f"    {name:<22}{size:>10,}{comp_s * 1e6 / size:>13,.0f} µs{run_s * 1000:>7.0f} ms"
                f"{run_s * 1e6 / size:>6,.0f} µs{load_s * 1000:>6.0f} ms{with_fsync:>28}"
            )
    print("    goal: ≤ 100 µs of Python per completion, linear in the number of components")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=100, help="runs of each variant in (a) (default 100)")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[250, 1000, 10000],
        help="pipeline sizes in (b) (default 250 1000 10000)",
    )
    parser.add_argument("--dir", type=Path, default=None, help="where to write checkpoints (default: a temp dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ppf-bench-", dir=args.dir) as tmp:
        base = Path(tmp)
        print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, checkpoints in {base}")
        print()
        overhead(args.runs, base)
        growth(args.sizes, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
