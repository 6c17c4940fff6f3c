"""What checkpointing costs: ``python benchmarks/checkpoint_overhead.py [--runs N]`` prints two tables.

(a) A 20-component pipeline of components that do nothing, run N times without checkpointing and with
    ``CheckpointHooks`` on a ``LocalCheckpointStore``, interleaved (alternating which goes first) so that
    drift in machine load hits both alike. Medians, their ratio, and the checkpoint cost per component.
    Two diagnostic rows say where the time goes: the same store with ``os.fsync`` stubbed out (never do
    this for real: it is what makes a checkpoint survive a crash) and the in-memory store.
(b) Pipelines of 250, 500 and 1,000 components: total checkpoint time (fingerprinting, every hook call
    including every save, and the final load), to show that it grows linearly.

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
from airflow_ppf.runner.checkpoint import (
    compute_component_fingerprints,
    compute_field_digests,
    compute_pipeline_fingerprint,
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


class TimedHooks(NoOpHooks):
    """Forward every event to ``inner`` and add up the time spent in it."""

    def __init__(self, inner: CheckpointHooks) -> None:
        self.inner = inner
        self.critical = True
        self.seconds = 0.0

    def __getattribute__(self, name: str) -> Any:
        if name.startswith(("before_", "after_", "on_")):
            method = getattr(object.__getattribute__(self, "inner"), name)

            def call(*args: Any) -> Any:
                start = time.perf_counter()
                try:
                    return method(*args)
                finally:
                    self.seconds += time.perf_counter() - start

            return call
        return object.__getattribute__(self, name)


class TimedStore(LocalCheckpointStore):
    """A LocalCheckpointStore that adds up the time spent in ``save``."""

    save_seconds = 0.0
    saves = 0

    def save(self, state: CheckpointState) -> None:
        start = time.perf_counter()
        super().save(state)
        self.save_seconds += time.perf_counter() - start
        self.saves += 1


def fingerprint_all(config: PipelineConfig) -> None:
    """Everything a run fingerprints: the pipeline, each component, and each component's fields."""
    compute_pipeline_fingerprint(config)
    compute_component_fingerprints(config)
    for comp in config.components:
        compute_field_digests(comp)


def one_run(config: PipelineConfig, folder: Path) -> tuple[float, float, int, float]:
    """Run ``config`` once with checkpointing; return (hooks seconds, save seconds, saves, final load seconds)."""
    store = TimedStore(folder)
    hooks = TimedHooks(CheckpointHooks(store, run_id="run"))
    SimplePipelineRunner(config, hooks=hooks).run()
    load_s = timed(lambda: LocalCheckpointStore(folder).load("run", config.name))
    return hooks.seconds, store.save_seconds, store.saves, load_s


def growth(sizes: list[int], base: Path, reps: int = 5) -> None:
    print(f"(b) total checkpoint time of one run, by pipeline size (median of {reps} runs)")
    print(
        f"    {'components':>10}{'fingerprints':>14}{'hooks total':>13}{'of which saves':>16}{'saves':>7}"
        f"{'final load':>12}{'total':>10}{'per comp.':>11}{'total, fsync stubbed':>22}{'per comp.':>11}"
    )
    for size in sizes:
        config = pipeline(size)
        rows = []
        for rep in range(reps):
            fingerprint_s = timed(lambda c=config: fingerprint_all(c))
            hooks_s, save_s, saves, load_s = one_run(config, base / f"b-{size}-{rep}")
            with fsync_stubbed():
                cpu_hooks_s, _, _, cpu_load_s = one_run(config, base / f"b-{size}-{rep}-nofsync")
            rows.append((fingerprint_s, hooks_s, save_s, saves, load_s, hooks_s + load_s, cpu_hooks_s + cpu_load_s))
        fp, hk, sv, n, ld, tot, cpu = (statistics.median(col) for col in zip(*rows, strict=True))
        print(
            f"    {size:>10,}{fp * 1000:>11.1f} ms{hk * 1000:>10.0f} ms{sv * 1000:>13.0f} ms{int(n):>7}"
            f"{ld * 1000:>9.1f} ms{tot * 1000:>7.0f} ms{tot * 1e6 / size:>8,.0f} µs"
            f"{cpu * 1000:>19.0f} ms{cpu * 1e6 / size:>8,.0f} µs"
        )
    print("    'fingerprints' is computed once more on its own for reference: 'hooks total' already includes it.")
    print("    'total' = hooks total (fingerprints, state changes, every save) + final load.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=100, help="runs of each variant in (a) (default 100)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000], help="pipeline sizes in (b)")
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
