"""A small project written for pyspark-pipeline-framework 1.0, with only its imports changed.

Components name themselves with a read-only ``name`` property (as every upstream component does), hold
a "connection" they open and close, and one of them fails until it is fixed. The store is written the
upstream way: ``json.dumps(asdict(state))`` to save, ``CheckpointState(**data)`` to load.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, ClassVar

from airflow_ppf.components import PipelineComponent
from airflow_ppf.runner import CheckpointState

#: What the components did, in order (``open:extract``, ``run:extract``, ``close:extract``...).
EVENTS: list[str] = []
#: Connections currently open, by component.
OPEN: set[str] = set()


class _Connected(PipelineComponent):
    """Opens a connection before running and closes it after."""

    label: ClassVar[str] = ""

    def open(self) -> None:
        EVENTS.append(f"open:{self.label}")
        OPEN.add(self.label)

    def close(self) -> None:
        EVENTS.append(f"close:{self.label}")
        OPEN.discard(self.label)

    def run(self) -> None:
        assert self.label in OPEN, f"{self.label} ran without its connection"
        EVENTS.append(f"run:{self.label}")
        self.work()

    def work(self) -> None:
        """The component's own work."""


class Extract(_Connected):
    label = "extract"

    def __init__(self, table: str) -> None:
        self.table = table

    @property
    def name(self) -> str:
        return "extract-orders"


class Transform(_Connected):
    """Fails while ``broken`` (the bug a user fixes between the failed run and the resume)."""

    label = "transform"
    broken: ClassVar[bool] = True

    def __init__(self, factor: int) -> None:
        self.factor = factor

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Transform:
        return cls(**config)

    @property
    def name(self) -> str:
        return "transform-orders"

    def work(self) -> None:
        if Transform.broken:
            raise ConnectionError("warehouse connection reset")


class Load(_Connected):
    label = "load"

    def __init__(self, target: str) -> None:
        self.target = target

    @property
    def name(self) -> str:
        return "load-orders"


class DictCheckpointStore:
    """A checkpoint store written against pyspark-pipeline-framework's CheckpointStore protocol."""

    def __init__(self) -> None:
        self.documents: dict[tuple[str, str], str] = {}

    def save(self, state: CheckpointState) -> None:
        self.documents[(state.pipeline_name, state.run_id)] = json.dumps(asdict(state))

    def load(self, run_id: str, pipeline_name: str) -> CheckpointState | None:
        raw = self.documents.get((pipeline_name, run_id))
        if raw is None:
            return None
        data = json.loads(raw)
        return CheckpointState(**data)

    def delete(self, run_id: str, pipeline_name: str) -> None:
        self.documents.pop((pipeline_name, run_id), None)

    def exists(self, run_id: str, pipeline_name: str) -> bool:
        return (pipeline_name, run_id) in self.documents


class SessionWrapper:
    """Stands for upstream's SparkSessionWrapper: its ``spark`` is read only if a Spark component runs."""

    def __init__(self) -> None:
        self.reads = 0

    @property
    def spark(self) -> Any:
        self.reads += 1
        raise AssertionError("no Spark component in this pipeline: the session must not be asked for")
