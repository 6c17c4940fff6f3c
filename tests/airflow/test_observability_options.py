"""Observability options and their off states: asset aliases, parse-time assets, tracing off, no provider."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.airflow.conftest import REPO, TEST_DAGS
from tests.helpers.components import APPEND_NAME


def test_output_assets_adds_an_asset_alias_to_the_outlets() -> None:
    from airflow.sdk import DAG, Asset, AssetAlias

    from airflow_ppf.operators import PipelineOperator

    with DAG("ppf_assets_option", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)):
        default = PipelineOperator(task_id="a", pipeline="p.conf", output_assets=True)
        named = PipelineOperator(task_id="b", pipeline="p.conf", output_assets="orders", outlets=[Asset("s3://b/k")])
        off = PipelineOperator(task_id="c", pipeline="p.conf")
    assert default.outlets == [AssetAlias("ppf:ppf_assets_option.a")]
    assert named.outlets == [Asset("s3://b/k"), AssetAlias("orders")]
    assert off.outlets == []
    with pytest.raises(ValueError, match="output_assets=True needs a DAG"):
        PipelineOperator(task_id="d", pipeline="p.conf", output_assets=True)


def test_pipeline_assets_reads_the_outputs_at_parse_time(tmp_path: Path) -> None:
    from airflow.sdk import Asset

    from airflow_ppf.observability import pipeline_assets

    conf = tmp_path / "p.conf"
    conf.write_text(
        textwrap.dedent(
            """
            name: p
            spark { spark_conf { spark.sql.warehouse.dir: "/wh" } }
            components: [
              { name: w1, class_path: airflow_ppf.components.spark.WriteFiles,
                config { input_view: v, path: ${OUT}/files } }
              { name: w2, class_path: airflow_ppf.components.spark.WriteTable, config { input_view: v, table: t } }
              { name: w3, class_path: airflow_ppf.components.spark.WriteFiles, enabled: false,
                config { input_view: v, path: /never } }
            ]
            """
        ),
        encoding="utf-8",
    )
    assert pipeline_assets(conf, {"OUT": "s3a://lake"}) == [Asset("s3://lake/files"), Asset("file:///wh/t")]


def test_tracing_off_is_a_no_op() -> None:
    from opentelemetry import trace

    from airflow_ppf.config import PipelineConfig
    from airflow_ppf.observability.tracing import TracingHooks
    from airflow_ppf.runner import PipelineResultStatus, SimplePipelineRunner

    assert not hasattr(trace.get_tracer_provider(), "add_span_processor")  # no SDK provider in this process
    hooks = TracingHooks({"dag_id": "d", "task_id": "t", "pipeline": "p"})
    recording: list[bool] = []
    before = hooks.before_component

    def watch(config: object, index: int, total: int) -> None:
        before(config, index, total)  # type: ignore[arg-type]
        recording.append(hooks._open[config.name][0].is_recording())  # type: ignore[attr-defined]

    hooks.before_component = watch  # type: ignore[method-assign]
    config = PipelineConfig.from_dict(
        {
            "name": "p",
            "components": [
                {"name": "a", "class_path": "tests.helpers.components.Step"},
                {
                    "name": "b",
                    "class_path": "tests.helpers.components.Step",
                    "depends_on": ["a"],
                    "config": {"fail_times": -1},
                },
            ],
        }
    )
    result = SimplePipelineRunner(config, hooks=hooks).run()
    assert result.status is PipelineResultStatus.PARTIAL_SUCCESS
    assert recording == [False, False]
    assert hooks._open == {}
    assert not trace.get_current_span().get_span_context().is_valid  # every context attached was detached


@pytest.mark.usefixtures("airflow_db")
def test_without_the_openlineage_provider_nothing_changes_and_nothing_is_imported(tmp_path: Path) -> None:
    dag_file = TEST_DAGS / "ppf_obs_no_provider.py"
    pipeline = {
        "name": "plain",
        "components": [{"name": "a", "class_path": APPEND_NAME, "config": {"log_file": str(tmp_path / "log")}}],
    }
    dag_file.write_text(
        textwrap.dedent(
            f"""
            import datetime as dt
            from airflow.sdk import DAG
            from airflow_ppf.operators import PipelineOperator

            with DAG("ppf_obs_no_provider", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) as dag:
                PipelineOperator(task_id="pipeline", pipeline={pipeline!r}, output_assets=True)
            """
        ),
        encoding="utf-8",
    )
    # The path finder, less the provider and the OpenLineage client: they look uninstalled (no modules, no
    # distributions, so no provider entry point either).
    script = textwrap.dedent(
        f"""
        import json, runpy, sys

        import importlib_metadata  # adds its own distribution finder to sys.meta_path

        HIDDEN = ("openlineage", "airflow.providers.openlineage")
        HIDDEN_DISTS = ("openlineage", "apache-airflow-providers-openlineage")

        class NotInstalled:
            def __init__(self, finder):
                self.finder = finder

            def find_spec(self, name, path=None, target=None):
                find = getattr(self.finder, "find_spec", None)
                return None if name.startswith(HIDDEN) or find is None else find(name, path, target)

            def find_distributions(self, *args, **kwargs):
                find = getattr(self.finder, "find_distributions", None)
                for dist in find(*args, **kwargs) if find else ():
                    if not (dist.metadata["Name"] or "").lower().startswith(HIDDEN_DISTS):
                        yield dist

            def __getattr__(self, name):
                return getattr(self.finder, name)

        sys.meta_path[:] = [NotInstalled(f) for f in sys.meta_path]
        try:
            import airflow.providers.openlineage
        except ImportError:
            pass
        else:
            raise AssertionError("the provider is still importable")
        dag = runpy.run_path({str(dag_file)!r})["dag"]
        state = dag.test().state
        loaded = sorted(m for m in sys.modules if m.startswith(("openlineage", "airflow.providers.openlineage")))
        print(json.dumps({{"state": str(state), "loaded": loaded}}))
        """
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
        )
    finally:
        dag_file.unlink()
    assert out.returncode == 0, out.stderr[-4000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"state": "success", "loaded": []}
    assert (tmp_path / "log").read_text(encoding="utf-8").split() == ["a@1"]  # ran once, in try 1
