"""Resume on retry with real Airflow services, checked only through the REST API.

The example DAG ``ppf_orders_resume`` fails its pipeline task late on try 1 (``publish_check``); Airflow's
scheduler retries it, and try 2 must skip the five components try 1 finished. Runs once per metadata
database (SQLite, PostgreSQL). The mapped example runs on SQLite only (CI time).

The runs of a stack are triggered together as soon as it is up, so that they overlap (PARALLELISM 2);
each test then waits for its own run and checks it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.e2e.harness import AirflowStack
from tests.helpers.example_reports import check_daily_revenue, check_region_report

ORDERS_DAG = "ppf_orders_resume"
ORDERS_TASK = "orders_daily_revenue"
EARLY = ["read_orders", "read_customers", "clean_orders", "enrich_orders", "daily_revenue"]
LATE = ["publish_check", "write_report"]

MAPPED_DAG = "ppf_regions_mapped"
MAPPED_TASK = "region_report"
REGION_EARLY = ["read_orders", "read_customers", "region_orders", "top_customers"]

RUN_TIMEOUT = 480  # seconds; a run takes ~1.5-3 min on a loaded 2-core machine

#: What a task log must not show: the JVM's start-up output, Spark's progress bar, the plain-Python hint.
_NOISE = ("log4j2-defaults.properties", "NativeCodeLoader", "setLogLevel(newLevel)", "[Stage ", "completed_components=")


@dataclass(frozen=True)
class Run:
    dag_id: str
    run_id: str
    base_dir: Path


#: A second orders run, edited in the checkpoint view after it completed.
RERUN_FROM = "orders-rerun-from"

#: Example runs triggered on every stack of this module: key -> (dag_id, conf without base_dir, backends).
EXAMPLE_RUNS: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    ORDERS_DAG: (ORDERS_DAG, {"orders": 3000}, ("sqlite", "postgres")),
    MAPPED_DAG: (MAPPED_DAG, {"orders": 1500, "regions": ["north", "west"]}, ("sqlite",)),
    RERUN_FROM: (ORDERS_DAG, {"orders": 2000}, ("sqlite",)),
}


@pytest.fixture(scope="module")
def example_runs(airflow_stack: AirflowStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Trigger this stack's example runs at once; return them by key (tests wait for their own)."""
    api = airflow_stack.client
    wanted = {key: run for key, run in EXAMPLE_RUNS.items() if airflow_stack.backend in run[2]}
    for dag_id in dict.fromkeys(dag_id for dag_id, _, _ in wanted.values()):
        api.wait_for_dag(dag_id)
    # Triggered together once every DAG is parsed: before the first tasks start writing to the (SQLite) DB.
    runs = {}
    for key, (dag_id, conf, _) in wanted.items():
        base = tmp_path_factory.mktemp(f"{key}-{airflow_stack.backend}")
        runs[key] = Run(dag_id, api.trigger(dag_id, {"base_dir": str(base), **conf}), base)
    return runs


def _excerpt(lines: list[str], limit: int = 60) -> str:
    return "\n".join(lines[-limit:])


def _attempt_summary(state: dict[str, Any]) -> str:
    return "; ".join(
        f"attempt {a['attempt']}: {a['status']} ran={a['ran']} skipped={a['skipped']} failed={a['failed']}"
        for a in state.get("attempts", [])
    )


def test_orders_pipeline_fails_once_then_resumes(airflow_stack: AirflowStack, example_runs: dict[str, Run]) -> None:
    api = airflow_stack.client
    run_id, base_dir = example_runs[ORDERS_DAG].run_id, example_runs[ORDERS_DAG].base_dir
    state = api.wait_for_run(ORDERS_DAG, run_id, timeout=RUN_TIMEOUT)
    assert state == "success", f"run {run_id} ended {state}\n{api.run_report(ORDERS_DAG, run_id)}"

    # Airflow's view: try 1 failed, try 2 succeeded.
    tries = api.tries(ORDERS_DAG, run_id, ORDERS_TASK)
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")], tries

    # Task logs: try 1 finished the early components, try 2 planned the resume and skipped them.
    log1 = api.logs(ORDERS_DAG, run_id, ORDERS_TASK, 1)
    log2 = api.logs(ORDERS_DAG, run_id, ORDERS_TASK, 2)
    for name in EARLY:
        assert any(re.search(rf"\] {name} ✓ ", line) for line in log1), f"no '{name} ✓' in try 1:\n{_excerpt(log1)}"
    assert any("publish_check ✗" in line for line in log1), _excerpt(log1)
    # The resume plan is a collapsible group ("::group::Resume plan..." ... "::endgroup::") that says so.
    starts = [i for i, line in enumerate(log2) if line.startswith("::group::Resume plan")]
    assert starts, f"no resume plan group in try 2:\n{_excerpt(log2)}"
    ends = [i for i, line in enumerate(log2) if line == "::endgroup::" and i > starts[0]]
    assert ends, f"the resume plan group is not closed:\n{_excerpt(log2)}"
    plan = "\n".join(log2[starts[0] : ends[0]])
    assert "resuming after attempt 1 (failed): skipping 5 of 7 components" in plan, plan
    for name in EARLY:
        assert re.search(rf"\b{name}\s+skip\s+completed in attempt 1", plan), f"{name} not planned as skip:\n{plan}"
    for name in EARLY:
        assert any(re.search(rf"\] {name} skipped \(completed in attempt 1\)", line) for line in log2), (
            f"try 2 did not log '{name} skipped (completed in attempt 1)':\n{_excerpt(log2)}"
        )
        assert not any(re.search(rf"\] {name} ✓ ", line) for line in log2), f"try 2 reran {name}"
    for name in LATE:
        assert any(re.search(rf"\] {name} ✓ ", line) for line in log2), f"no '{name} ✓' in try 2:\n{_excerpt(log2)}"

    # The checkpoint in Airflow's task state store, as the REST API shows it.
    store = api.state_store(ORDERS_DAG, run_id, ORDERS_TASK)
    assert {"ppf_checkpoint", "ppf_summary"} <= set(store), sorted(store)
    head = api.state_store(ORDERS_DAG, run_id, ORDERS_TASK, "ppf_checkpoint")
    assert head["encoding"] == "json", head.get("encoding")
    checkpoint = head["state"]
    assert checkpoint["run_id"] == f"{ORDERS_DAG}/{run_id}/{ORDERS_TASK}"
    assert checkpoint["status"] == "completed", _attempt_summary(checkpoint)
    assert checkpoint["completed_components"] == EARLY + LATE
    first, second = checkpoint["attempts"]
    summary = _attempt_summary(checkpoint)
    assert (first["attempt"], first["status"], first["failed"]) == (1, "failed", "publish_check"), summary
    assert first["ran"] == EARLY, summary
    assert first["skipped"] == [], summary
    assert (second["attempt"], second["status"], second["failed"]) == (2, "completed", None), summary
    assert second["skipped"] == first["ran"], summary
    assert second["ran"] == LATE, summary
    for name in EARLY:
        assert checkpoint["components"][name]["attempt"] == 1, name
    for name in LATE:
        assert checkpoint["components"][name]["attempt"] == 2, name
    assert store["ppf_summary"]["status"] == "completed", store["ppf_summary"]

    # The XCom summary of try 2.
    result = api.xcom(ORDERS_DAG, run_id, ORDERS_TASK)
    assert result["status"] == "success", result
    assert result["try_number"] == 2, result
    assert result["resumed"] is True, result
    assert result["skipped"] == EARLY, result
    assert [r["name"] for r in result["ran"]] == LATE, result

    # The "Checkpoint" extra link points at the checkpoint view of exactly this task instance.
    links = api.links(ORDERS_DAG, run_id, ORDERS_TASK)
    url = links.get("Checkpoint")
    assert url, links
    assert "/ppf/checkpoint?" in url, url
    query = parse_qs(urlsplit(url).query)
    assert query["dag_id"] == [ORDERS_DAG], url
    assert query["run_id"] == [run_id], url
    assert query["task_id"] == [ORDERS_TASK], url

    # And the pipeline really wrote its report: the right rows, value by value.
    folder = run_id.replace(":", "_")
    report = base_dir / "report" / folder / "daily_revenue"
    assert check_daily_revenue(report, base_dir / "data" / folder) == 30 * 4  # 30 days, 4 regions

    # Quiet logs: no JVM start-up chatter or progress bar (a worker logs stderr as ERROR), no Python-API
    # hint, the resume plan's headline once (the group's title), the restore cost said.
    for number, lines in ((1, log1), (2, log2)):
        noise = [line for line in lines if any(t in line for t in _NOISE)]
        assert not noise, f"try {number}: {noise}"
    headline = result["plan"]
    assert sum(headline in line for line in log2) == 1, _excerpt(log2)
    assert any(re.search(r"Restored 1 saved view \(.*\) in [\d.]+ s", line) for line in log2), _excerpt(log2)
    assert result["time_saved_s"] == round(result["time_saved_gross_s"] - result["restore_s"], 3), result


@pytest.mark.parametrize("airflow_stack", ["sqlite"], indirect=True)
def test_mapped_instances_each_resume_from_their_own_checkpoint(
    airflow_stack: AirflowStack, example_runs: dict[str, Run]
) -> None:
    api = airflow_stack.client
    run_id, base_dir = example_runs[MAPPED_DAG].run_id, example_runs[MAPPED_DAG].base_dir
    state = api.wait_for_run(MAPPED_DAG, run_id, timeout=RUN_TIMEOUT)
    assert state == "success", f"run {run_id} ended {state}\n{api.run_report(MAPPED_DAG, run_id)}"

    instances = sorted(
        (ti for ti in api.task_instances(MAPPED_DAG, run_id) if ti["task_id"] == MAPPED_TASK),
        key=lambda ti: ti["map_index"],
    )
    assert [ti["map_index"] for ti in instances] == [0, 1], instances
    run_ids = set()
    for map_index in (0, 1):
        tries = api.tries(MAPPED_DAG, run_id, MAPPED_TASK, map_index)
        assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")], (map_index, tries)

        head = api.state_store(MAPPED_DAG, run_id, MAPPED_TASK, "ppf_checkpoint", map_index=map_index)
        checkpoint = head["state"]
        summary = _attempt_summary(checkpoint)
        run_ids.add(checkpoint["run_id"])
        assert checkpoint["run_id"] == f"{MAPPED_DAG}/{run_id}/{MAPPED_TASK}[{map_index}]"
        assert checkpoint["status"] == "completed", summary
        first, second = checkpoint["attempts"]
        assert (first["failed"], first["ran"]) == ("flaky_upload_gate", REGION_EARLY), summary
        assert second["skipped"] == REGION_EARLY, summary
        assert second["ran"] == ["flaky_upload_gate", "write_top_customers"], summary

        result = api.xcom(MAPPED_DAG, run_id, MAPPED_TASK, map_index=map_index)
        assert (result["status"], result["skipped"]) == ("success", REGION_EARLY), result
        link = api.links(MAPPED_DAG, run_id, MAPPED_TASK, map_index=map_index).get("Checkpoint") or ""
        assert parse_qs(urlsplit(link).query).get("map_index") == [str(map_index)], link
    assert len(run_ids) == 2, run_ids

    # The unmapped namespace (-1) of a mapped task stays empty.
    assert api.state_store(MAPPED_DAG, run_id, MAPPED_TASK) == {}
    folder = run_id.replace(":", "_")
    for region in ("north", "west"):
        report = base_dir / "report" / folder / region / "top_customers"
        assert check_region_report(report, base_dir / "data" / folder, region) == 20


# -- the checkpoint inspector (airflow-ppf's plugin) on the real api-server ----------------------------

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _inspector_query(run_id: str) -> dict[str, Any]:
    return {"dag_id": ORDERS_DAG, "run_id": run_id, "task_id": ORDERS_TASK, "map_index": -1}


@pytest.mark.parametrize("airflow_stack", ["sqlite"], indirect=True)
def test_checkpoint_view_api_is_behind_airflow_auth(airflow_stack: AirflowStack, example_runs: dict[str, Run]) -> None:
    from tests.e2e.harness import AirflowClient

    api = airflow_stack.client
    run_id = example_runs[ORDERS_DAG].run_id
    assert api.wait_for_run(ORDERS_DAG, run_id, timeout=RUN_TIMEOUT) == "success", api.run_report(ORDERS_DAG, run_id)
    query = _inspector_query(run_id)

    anonymous = AirflowClient(airflow_stack.base_url)
    for path in ("/ppf/api/checkpoint", "/ppf/checkpoint", "/ppf/api/run"):
        anonymous.request("GET", path, params=query, expect=(401,))
    anonymous.request(
        "POST", "/ppf/api/checkpoint/rerun", params=query, json={"component": "clean_orders"}, expect=(401,)
    )

    viewer = AirflowClient(airflow_stack.base_url).login("viewer", AirflowStack.PASSWORDS["viewer"])
    payload = viewer.get("/ppf/api/checkpoint", params=query)
    assert payload["store"] == "task_state", payload.get("store")
    assert payload["can_edit"] is False
    report = payload["checkpoint"]
    states = {node["name"]: node["state"] for node in report["graph"]["nodes"]}
    assert states == {**dict.fromkeys(EARLY, "skipped"), **dict.fromkeys(LATE, "done")}, states
    assert {(e["from"], e["to"]) for e in report["graph"]["edges"]} >= {("read_orders", "clean_orders")}
    assert [a["attempt"] for a in report["attempts"]] == [1, 2]
    # The figure is the recorded plan's (net of restoring saved views, so it can be below zero on a loaded
    # machine): the view shows the record, never a figure of its own.
    recorded = api.state_store(ORDERS_DAG, run_id, ORDERS_TASK, "ppf_checkpoint")["state"]["attempts"][1]["resume"]
    assert report["time_saved_ms"]["latest"] == recorded["time_saved_ms"], recorded
    assert recorded["time_saved_ms"] == recorded["time_saved_gross_ms"] - recorded.get("restore_ms", 0), recorded
    assert recorded["time_saved_gross_ms"] > 0, recorded
    # Viewers may look but not edit.
    viewer.request("POST", "/ppf/api/checkpoint/rerun", params=query, json={"component": "clean_orders"}, expect=(403,))
    viewer.request("POST", "/ppf/api/checkpoint/reset", params=query, json={}, expect=(403,))
    # Bad input gets a clear 4xx, never a traceback.
    bad = viewer.request(
        "GET", "/ppf/api/checkpoint", params={**query, "map_index": "x' OR 1=1"}, expect=(200, 404, 422)
    )
    assert "Traceback" not in bad.text
    # Nothing secret in the page: no passwords of this deployment, no JWT.
    page = viewer.request("GET", "/ppf/checkpoint", params=query).text
    for secret in AirflowStack.PASSWORDS.values():
        assert secret not in page
        assert secret not in str(payload)


@pytest.mark.usefixtures("chromium")
@pytest.mark.parametrize("airflow_stack", ["sqlite"], indirect=True)
def test_checkpoint_view_in_the_airflow_ui(airflow_stack: AirflowStack, example_runs: dict[str, Run]) -> None:
    """Headless Chromium opens the task instance's "Checkpoint" tab in Airflow's UI (the plugin in an iframe)."""
    import json
    from urllib.parse import quote

    from tests.e2e.browser import HeadlessChromium

    api = airflow_stack.client
    run_id = example_runs[ORDERS_DAG].run_id
    assert api.wait_for_run(ORDERS_DAG, run_id, timeout=RUN_TIMEOUT) == "success", api.run_report(ORDERS_DAG, run_id)
    token = api.token("admin", AirflowStack.PASSWORDS["admin"])
    tab = f"/dags/{ORDERS_DAG}/runs/{quote(run_id, safe='')}/tasks/{ORDERS_TASK}/plugin/ppf-checkpoint"
    browser = HeadlessChromium()
    try:
        browser.set_cookie(airflow_stack.base_url, "_token", token)
        browser.navigate(airflow_stack.base_url + tab)
        frame = "document.querySelector('iframe')"
        src = browser.wait_for(f"{frame} && {frame}.src", timeout=90)
        assert "/ppf/checkpoint?" in src, src
        inner = f"{frame}.contentDocument"
        browser.wait_for(f"{inner} && {inner}.body && {inner}.body.dataset.ready === '1'", timeout=90)
        nodes = browser.evaluate(
            f"JSON.stringify([...{inner}.querySelectorAll('#ppf-graph g.node')]"
            ".map(n => [n.dataset.name, n.dataset.state]))"
        )
        edges = browser.evaluate(f"{inner}.querySelectorAll('#ppf-graph path.edge').length")
        attempts = browser.evaluate(
            f"JSON.stringify([...{inner}.querySelectorAll('#ppf-attempts tbody tr')]"
            ".map(r => [r.dataset.attempt, r.dataset.status]))"
        )
        shot = browser.screenshot(ARTIFACTS / "checkpoint-view.png")
    finally:
        browser.close()
    assert dict(json.loads(nodes)) == {**dict.fromkeys(EARLY, "skipped"), **dict.fromkeys(LATE, "done")}, nodes
    assert edges >= 6, edges
    assert json.loads(attempts) == [["1", "failed"], ["2", "completed"]], attempts
    assert shot.stat().st_size > 10_000


# -- make demo's account of the run (examples/demo.py, act 1), on this stack's run ----------------------


@pytest.mark.parametrize("airflow_stack", ["sqlite"], indirect=True)
def test_the_demo_shows_the_failed_try_the_resume_plan_and_the_rows(
    airflow_stack: AirflowStack,
    example_runs: dict[str, Run],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib
    from urllib.parse import quote

    api = airflow_stack.client
    run_id, base_dir = example_runs[ORDERS_DAG].run_id, example_runs[ORDERS_DAG].base_dir
    assert api.wait_for_run(ORDERS_DAG, run_id, timeout=RUN_TIMEOUT) == "success", api.run_report(ORDERS_DAG, run_id)
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "examples"))
    demo = importlib.import_module("demo")

    summary = demo.show_airflow_run(api, airflow_stack, run_id, base_dir)
    out = capsys.readouterr().out

    assert summary["skipped"] == EARLY, summary
    assert re.search(r"Try 1 of orders_daily_revenue .*: failed late", out), out
    assert "[6/7] publish_check ✗ InjectedFailure: reporting database unavailable" in out, out
    assert "resuming after attempt 1 (failed): skipping 5 of 7 components" in out, out
    for name in EARLY:
        assert re.search(rf"\b{name}\s+skip\s+completed in attempt 1", out), f"{name} not in the plan:\n{out}"
        assert f"] {name} skipped (completed in attempt 1)" in out, out
    assert "Restored view 'daily_revenue'" in out, out
    assert f"skipped 5: {', '.join(EARLY)}" in out, out
    rows = re.search(r"^(\d+) rows in (\S+); the first ones:", out, re.MULTILINE)
    assert rows, out
    assert int(rows.group(1)) > 0
    assert Path(rows.group(2)) == base_dir / "report" / run_id.replace(":", "_") / "daily_revenue"
    # The tab the browser test opens.
    tab = f"/dags/{ORDERS_DAG}/runs/{quote(run_id, safe='')}/tasks/{ORDERS_TASK}/plugin/ppf-checkpoint"
    assert f"  {airflow_stack.base_url}{tab}\n" in out, out


# -- after the last retry failed: Resume from the Checkpoint tab ----------------------------------------
# ppf_orders_exhausted (tests/e2e/dags) is the orders example whose publish_check fails on tries 1 and 2;
# with retries=1 the task fails for good with five of seven components done.

EXHAUSTED_DAG = "ppf_orders_exhausted"
CONFIG_ERROR_DAG = "ppf_config_error"
WIDE_DAG = "ppf_wide_pipeline"
#: A second exhausted run, resumed by clicking in the browser.
EXHAUSTED_UI = "orders-exhausted-ui"
EXAMPLE_RUNS.update(
    {
        EXHAUSTED_DAG: (EXHAUSTED_DAG, {"orders": 2000}, ("sqlite", "postgres")),
        EXHAUSTED_UI: (EXHAUSTED_DAG, {"orders": 1000}, ("sqlite",)),
        CONFIG_ERROR_DAG: (CONFIG_ERROR_DAG, {}, ("sqlite",)),
        WIDE_DAG: (WIDE_DAG, {}, ("sqlite",)),
    }
)


def _expected_daily_revenue(data_dir: Path) -> set[tuple[str, str, int, Decimal]]:
    """What ``daily_revenue`` must hold, computed from the run's input CSV files in plain Python."""
    with open(data_dir / "customers.csv", newline="", encoding="utf-8") as fh:
        region = {int(row["customer_id"]): row["region"] for row in csv.DictReader(fh)}
    groups: dict[tuple[str, str], list[Decimal]] = {}
    with open(data_dir / "orders.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            amount, customer = Decimal(row["amount"]), int(row["customer_id"])
            if row["status"] == "paid" and amount > 0 and customer in region:
                groups.setdefault((row["order_date"], region[customer]), []).append(amount)
    return {(day, reg, len(amounts), sum(amounts, Decimal(0))) for (day, reg), amounts in groups.items()}


def _written_daily_revenue(report: Path) -> set[tuple[str, str, int, Decimal]]:
    """The rows the pipeline wrote (parquet, partitioned by region)."""
    import pyarrow.parquet as pq

    rows = pq.read_table(report).to_pylist()
    return {(str(r["order_date"]), str(r["region"]), int(r["orders"]), Decimal(r["revenue"])) for r in rows}


def _failure_messages(api: Any, dag_id: str, run_id: str, task_id: str, try_number: int) -> list[str]:
    """The lines of one try's log that carry the pipeline's failure message (in any field: the exception's
    text is a structured detail of the "Task failed" event)."""
    path = f"{api.ti_path(dag_id, run_id, task_id)}/logs/{try_number}"
    content = api.get(path, params={"full_content": "true"}).get("content") or []
    texts = [json.dumps(item, ensure_ascii=False) if isinstance(item, dict) else str(item) for item in content]
    return [text for text in texts if "components are done and checkpointed" in text]


def _resume_query(dag_id: str, task_id: str, run_id: str) -> dict[str, Any]:
    return {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": -1}


def _check_resumed_try(api: Any, run: Run, by: str) -> dict[str, Any]:
    """Try 3 after a Resume: skipped the five components tries 1-2 finished, ran the rest, wrote the right rows.
    Returns the checkpoint."""
    run_id = run.run_id
    state = api.wait_for_run(EXHAUSTED_DAG, run_id, timeout=RUN_TIMEOUT)
    assert state == "success", f"run {run_id} ended {state} after the resume\n{api.run_report(EXHAUSTED_DAG, run_id)}"
    tries = api.tries(EXHAUSTED_DAG, run_id, ORDERS_TASK)
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "failed"), (3, "success")], tries

    log3 = api.logs(EXHAUSTED_DAG, run_id, ORDERS_TASK, 3)
    headline = f"resuming after attempt 2 (failed), resumed by {by} from the Checkpoint tab: skipping 5 of 7 components"
    assert any(line.startswith("::group::Resume plan") and headline in line for line in log3), _excerpt(log3)
    assert not any("Starting from the beginning" in line for line in log3), _excerpt(log3)
    for name in EARLY:
        assert any(re.search(rf"\] {name} skipped \(completed in attempt 1\)", line) for line in log3), name
        assert not any(re.search(rf"\] {name} ✓ ", line) for line in log3), f"try 3 reran {name}"
    result = api.xcom(EXHAUSTED_DAG, run_id, ORDERS_TASK)
    assert (result["status"], result["try_number"], result["skipped"]) == ("success", 3, EARLY), result
    assert [r["name"] for r in result["ran"]] == LATE, result

    checkpoint = api.state_store(EXHAUSTED_DAG, run_id, ORDERS_TASK, "ppf_checkpoint")["state"]
    assert [a["attempt"] for a in checkpoint["attempts"]] == [1, 2, 3], _attempt_summary(checkpoint)
    resume = [e for e in checkpoint["attempts"][1].get("events", []) if e["event"] == "resume"]
    assert [(e["by"], e["max_tries"]) for e in resume] == [(by, 3)], checkpoint["attempts"][1]
    assert {n: checkpoint["components"][n]["attempt"] for n in EARLY + LATE} == {
        **dict.fromkeys(EARLY, 1),
        **dict.fromkeys(LATE, 3),
    }
    report = run.base_dir / "report" / run_id.replace(":", "_") / "daily_revenue"
    data_dir = run.base_dir / "data" / run_id.replace(":", "_")
    written = _written_daily_revenue(report)
    assert written, f"no rows in {report}"
    assert written == _expected_daily_revenue(data_dir)
    return dict(checkpoint)


def test_resume_after_the_last_retry_failed(airflow_stack: AirflowStack, example_runs: dict[str, Run]) -> None:
    """The on-call flow on the real api-server: the last retry fails, its message says how to resume, a
    Resume from the Checkpoint tab's API clears the task through Airflow, and try 3 resumes."""
    from tests.e2e.harness import AirflowClient

    api = airflow_stack.client
    run = example_runs[EXHAUSTED_DAG]
    state = api.wait_for_run(EXHAUSTED_DAG, run.run_id, timeout=RUN_TIMEOUT)
    assert state == "failed", f"run {run.run_id} ended {state}\n{api.run_report(EXHAUSTED_DAG, run.run_id)}"
    tries = api.tries(EXHAUSTED_DAG, run.run_id, ORDERS_TASK)
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "failed")], tries
    # Try 1's message promises the retry; try 2's says how to resume now that none is left.
    [first] = _failure_messages(api, EXHAUSTED_DAG, run.run_id, ORDERS_TASK, 1)
    assert "5 of 7 components are done and checkpointed; the retry (try 2 of 2) resumes from there." in first, first
    [last] = _failure_messages(api, EXHAUSTED_DAG, run.run_id, ORDERS_TASK, 2)
    assert "5 of 7 components are done and checkpointed. No retry is left" in last, last
    assert "retry resumes" not in last, last
    assert (
        f"press Resume in the task's Checkpoint tab ({airflow_stack.base_url}/ppf/checkpoint?dag_id={EXHAUSTED_DAG}&"
        in last
    )

    query = _resume_query(EXHAUSTED_DAG, ORDERS_TASK, run.run_id)
    AirflowClient(airflow_stack.base_url).request(
        "POST", "/ppf/api/checkpoint/resume", params=query, json={}, expect=(401,)
    )
    viewer = AirflowClient(airflow_stack.base_url).login("viewer", AirflowStack.PASSWORDS["viewer"])
    viewer.request("POST", "/ppf/api/checkpoint/resume", params=query, json={}, expect=(403,))
    assert api.tries(EXHAUSTED_DAG, run.run_id, ORDERS_TASK)[-1]["state"] == "failed"

    user = AirflowClient(airflow_stack.base_url).login("user1", AirflowStack.PASSWORDS["user1"])
    resumed = user.post("/ppf/api/checkpoint/resume", {}, params=query)
    assert (resumed["resumed"], resumed["to_run"]) == (True, LATE), resumed.get("to_run")
    assert (resumed["task_instance"]["state"], resumed["task_instance"]["max_tries"]) == (None, 3)
    _check_resumed_try(api, run, by="user1")
    # Airflow's audit log names who resumed, as it does for its own clears.
    logs = api.get("/api/v2/eventLogs", params={"event": "ppf_checkpoint_resume", "dag_id": EXHAUSTED_DAG})
    assert [(e["owner"], e["run_id"]) for e in logs["event_logs"]] == [("user1", run.run_id)]


def _frame_document(browser: Any, url: str) -> str:
    """Open an Airflow UI page with a plugin tab; return the JavaScript expression of the tab's document."""
    browser.navigate("about:blank")
    browser.navigate(url)
    frame = "document.querySelector('iframe')"
    browser.wait_for(f"{frame} && {frame}.src", timeout=90)
    inner = f"{frame}.contentDocument"
    browser.wait_for(f"{inner} && {inner}.body && {inner}.body.dataset.ready === '1'", timeout=90)
    return inner


def _graph_report(browser: Any, inner: str) -> dict[str, Any]:
    """Nodes and edges drawn, and every point of an edge path (sampled each 2 px) inside a node's box."""
    script = f"""(() => {{
      const doc = {inner};
      const boxes = [...doc.querySelectorAll('#ppf-graph g.node')].map(g => {{
        const m = g.transform.baseVal.consolidate().matrix, r = g.querySelector('rect');
        return [m.e, m.f, r.width.baseVal.value, r.height.baseVal.value, g.dataset.name];
      }});
      const paths = [...doc.querySelectorAll('#ppf-graph path.edge')];
      const hits = [];
      for (const p of paths) {{
        for (let s = 0, n = p.getTotalLength(); s <= n; s += 2) {{
          const q = p.getPointAtLength(s);
          for (const [x, y, w, h, name] of boxes) {{
            const inside = q.x > x + 1 && q.x < x + w - 1 && q.y > y + 1 && q.y < y + h - 1;
            if (inside) hits.push([p.dataset.from, p.dataset.to, name]);
          }}
        }}
      }}
      return JSON.stringify({{nodes: boxes.length, edges: paths.length, hits: hits.slice(0, 20)}});
    }})()"""
    return dict(json.loads(browser.evaluate(script)))


@pytest.mark.usefixtures("chromium")
@pytest.mark.parametrize("airflow_stack", ["sqlite"], indirect=True)
def test_checkpoint_tab_states_in_chromium(airflow_stack: AirflowStack, example_runs: dict[str, Run]) -> None:
    """Every state of the Checkpoint and Pipelines tabs in Airflow's UI, with a screenshot each: a run overview,
    a task that is no pipeline, a config error, a task with no retry left, resumed by a click, and after; a
    60-component graph. Dates follow the time zone picked in Airflow's UI."""
    from zoneinfo import ZoneInfo

    from tests.e2e.browser import HeadlessChromium

    api = airflow_stack.client
    runs = {key: example_runs[key].run_id for key in (ORDERS_DAG, EXHAUSTED_UI, CONFIG_ERROR_DAG, WIDE_DAG)}
    for key, expected in (
        (ORDERS_DAG, "success"),
        (EXHAUSTED_UI, "failed"),
        (CONFIG_ERROR_DAG, "failed"),
        (WIDE_DAG, "success"),
    ):
        dag_id = example_runs[key].dag_id
        state = api.wait_for_run(dag_id, runs[key], timeout=RUN_TIMEOUT)
        assert state == expected, f"{key} ended {state}\n{api.run_report(dag_id, runs[key])}"

    def tab(dag_id: str, run_id: str, task_id: str | None = None) -> str:
        base = f"{airflow_stack.base_url}/dags/{dag_id}/runs/{quote(run_id, safe='')}"
        return base + (f"/tasks/{task_id}/plugin/ppf-checkpoint" if task_id else "/plugin/ppf-run")

    zone = "Asia/Kolkata"  # +05:30 all year: never the machine's zone, never ambiguous
    browser = HeadlessChromium()
    try:
        browser.set_cookie(airflow_stack.base_url, "_token", api.token("admin", AirflowStack.PASSWORDS["admin"]))
        browser.navigate(airflow_stack.base_url + "/")
        browser.wait_for("document.readyState === 'complete'")
        browser.evaluate(f"localStorage.setItem('timezone', JSON.stringify({zone!r}))")  # as Airflow's settings do

        # The DAG run's "Pipelines" tab: a checkpoint never edited shows its status (it used to say "none yet").
        inner = _frame_document(browser, tab(ORDERS_DAG, runs[ORDERS_DAG]))
        row = f"{inner}.querySelector('#ppf-run-tasks tbody tr[data-task-id=\"{ORDERS_TASK}\"]')"
        cell = browser.evaluate(f"{row}.querySelector('td:nth-child(5)').textContent")
        assert cell == "completed · attempt 2", cell
        browser.screenshot(ARTIFACTS / "pipelines-tab.png")

        # A task that is no pipeline: explained.
        inner = _frame_document(browser, tab(ORDERS_DAG, runs[ORDERS_DAG], "make_input_data"))
        assert browser.evaluate(f"{inner}.body.dataset.state") == "not-pipeline"
        assert "is not a PipelineOperator task" in browser.evaluate(f"{inner}.getElementById('ppf-empty').textContent")
        browser.screenshot(ARTIFACTS / "checkpoint-tab-not-a-pipeline.png")

        # A config error: the error, not "no checkpoint".
        inner = _frame_document(browser, tab(CONFIG_ERROR_DAG, runs[CONFIG_ERROR_DAG], "broken_pipeline"))
        assert browser.evaluate(f"{inner}.body.dataset.state") == "task-error"
        error = browser.evaluate(f"{inner}.getElementById('ppf-task-error').textContent")
        assert error.startswith("Try 1 failed: Pipeline config error (no retry: fix the config): "), error
        assert "'extrct'" in error, error
        browser.screenshot(ARTIFACTS / "checkpoint-tab-config-error.png")

        # No retry left: Resume is offered; the graph draws no edge under a box; dates as Airflow shows them.
        run_id = runs[EXHAUSTED_UI]
        inner = _frame_document(browser, tab(EXHAUSTED_DAG, run_id, ORDERS_TASK))
        doc = f"{inner}.getElementById"
        assert browser.evaluate(f"{doc}('ppf-resume-button').disabled") is False
        options = browser.evaluate(f"[...{doc}('ppf-rerun-select').options].map(o => o.value).join(',')")
        assert options.split(",") == [*EARLY, "publish_check"], options
        counts = browser.evaluate(f"{doc}('ppf-counts').textContent")
        assert counts == "5 of 7 done, 1 failed", counts
        # "failed" is one word on one line (the card used to break it as "fail ed").
        lines = browser.evaluate(
            f"(() => {{ const t = {doc}('ppf-counts').firstChild, r = {inner}.createRange();"
            " r.setStart(t, t.data.indexOf('failed')); r.setEnd(t, t.data.length);"
            " return r.getClientRects().length; })()"
        )
        assert lines == 1, lines
        graph = _graph_report(browser, inner)
        assert (graph["nodes"], graph["edges"], graph["hits"]) == (7, 6, []), graph
        attempts = api.state_store(EXHAUSTED_DAG, run_id, ORDERS_TASK, "ppf_checkpoint")["state"]["attempts"]
        shown = json.loads(
            browser.evaluate(
                f"JSON.stringify([...{inner}.querySelectorAll('#ppf-attempts tbody tr td:nth-child(3) time')]"
                ".map(t => [t.textContent, t.title]))"
            )
        )
        expected = []
        for attempt in attempts:
            started = dt.datetime.fromisoformat(attempt["started_at"])
            expected.append(
                [
                    started.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S"),
                    started.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") + " UTC",
                ]
            )
        assert shown == expected
        browser.screenshot(ARTIFACTS / "checkpoint-tab-no-retry-left.png")

        # Resume, clicked: confirmed, recorded, and the task's next try resumes.
        browser.evaluate(f"{doc}('ppf-resume-button').click()")
        browser.wait_for(f"!{doc}('ppf-confirm').hidden")
        browser.evaluate(f"{doc}('ppf-confirm-ok').click()")
        message = browser.wait_for(f"{doc}('ppf-message').textContent", timeout=60)
        assert message == "Task cleared: its next try resumes and runs publish_check, write_report.", message
        assert "resumed by admin" in browser.evaluate(f"{doc}('ppf-edited').textContent")
        browser.screenshot(ARTIFACTS / "checkpoint-tab-resumed.png")
        # The page refreshes itself until the try ends.
        browser.wait_for(
            f"{inner}.querySelector('#ppf-status .badge').dataset.state === 'success'", timeout=RUN_TIMEOUT
        )
        headline = browser.evaluate(f"{doc}('ppf-resume-headline').textContent")
        assert "resumed by admin from the Checkpoint tab: skipping 5 of 7 components" in headline, headline
        browser.screenshot(ARTIFACTS / "checkpoint-tab-after-resume.png")

        # 60 components with long dependencies: still no edge under a box.
        inner = _frame_document(browser, tab(WIDE_DAG, runs[WIDE_DAG], "wide"))
        graph = _graph_report(browser, inner)
        assert graph["nodes"] == 60
        assert graph["edges"] > 60
        assert graph["hits"] == [], graph
        browser.screenshot(ARTIFACTS / "checkpoint-tab-60-components.png")
    finally:
        browser.close()
    _check_resumed_try(api, example_runs[EXHAUSTED_UI], by="admin")


# -- after the run: a user clears the task, or edits its checkpoint and then clears it -----------------
# These run last on their stack: they start try 3 of the orders task, which changes what the tests above read.


def _clear_task(api: Any, run_id: str) -> None:
    """Clear the orders task of ``run_id`` through the REST API, as the UI's "Clear" button does."""
    body = {"dry_run": False, "only_failed": False, "task_ids": [ORDERS_TASK], "dag_run_id": run_id}
    cleared = api.post(f"/api/v2/dags/{ORDERS_DAG}/clearTaskInstances", body)["task_instances"]
    assert [ti["task_id"] for ti in cleared] == [ORDERS_TASK], cleared


def _try_after_clear(api: Any, run_id: str) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """Wait for the try that follows a clear; return its log, its XCom summary and the checkpoint."""
    assert api.wait_for_run(ORDERS_DAG, run_id, timeout=RUN_TIMEOUT) == "success", api.run_report(ORDERS_DAG, run_id)
    tries = api.tries(ORDERS_DAG, run_id, ORDERS_TASK)
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success"), (3, "success")], tries
    log3 = api.logs(ORDERS_DAG, run_id, ORDERS_TASK, 3)
    result = api.xcom(ORDERS_DAG, run_id, ORDERS_TASK)
    checkpoint = api.state_store(ORDERS_DAG, run_id, ORDERS_TASK, "ppf_checkpoint")["state"]
    assert result["try_number"] == 3, result
    return log3, result, checkpoint


def _third_try(api: Any, run_id: str) -> tuple[list[str], dict[str, Any], dict[str, Any]]:
    """Wait for the try that follows a clear, which runs every component; return its log, XCom and checkpoint."""
    log3, result, checkpoint = _try_after_clear(api, run_id)
    assert (result["status"], result["skipped"]) == ("success", []), result
    assert [r["name"] for r in result["ran"]] == EARLY + LATE, result
    assert checkpoint["status"] == "completed", _attempt_summary(checkpoint)
    assert checkpoint["completed_components"] == EARLY + LATE
    for name in EARLY + LATE:
        assert checkpoint["components"][name]["attempt"] == 3, name
    return log3, result, checkpoint


@pytest.mark.parametrize("airflow_stack", ["sqlite"], indirect=True)
def test_a_cleared_task_starts_from_the_beginning(airflow_stack: AirflowStack, example_runs: dict[str, Run]) -> None:
    """Airflow 3.3 keeps the task state store across a clear; the operator still starts a cleared task fresh."""
    api = airflow_stack.client
    run_id = example_runs[ORDERS_DAG].run_id
    assert api.wait_for_run(ORDERS_DAG, run_id, timeout=RUN_TIMEOUT) == "success", api.run_report(ORDERS_DAG, run_id)

    _clear_task(api, run_id)
    log3, result, checkpoint = _third_try(api, run_id)

    assert result["resumed"] is False, result
    assert any("Starting from the beginning: the task was cleared" in line for line in log3), _excerpt(log3)
    # The old checkpoint was set aside: the new one records this try only.
    assert [a["attempt"] for a in checkpoint["attempts"]] == [3], _attempt_summary(checkpoint)


@pytest.mark.parametrize("airflow_stack", ["postgres"], indirect=True)
def test_reset_in_the_checkpoint_view_then_clear_reruns_everything(
    airflow_stack: AirflowStack, example_runs: dict[str, Run]
) -> None:
    """The "reset checkpoint" action on the real api-server, applied by the next try after a clear."""
    from tests.e2e.harness import AirflowClient

    api = airflow_stack.client
    run_id = example_runs[ORDERS_DAG].run_id
    assert api.wait_for_run(ORDERS_DAG, run_id, timeout=RUN_TIMEOUT) == "success", api.run_report(ORDERS_DAG, run_id)
    query = _inspector_query(run_id)
    viewer = AirflowClient(airflow_stack.base_url).login("viewer", AirflowStack.PASSWORDS["viewer"])
    viewer.request("POST", "/ppf/api/checkpoint/reset", params=query, json={}, expect=(403,))

    edited = api.post("/ppf/api/checkpoint/reset", {}, params=query)
    assert edited["invalidated"] == EARLY + LATE, edited.get("invalidated")
    _clear_task(api, run_id)
    log3, _, checkpoint = _third_try(api, run_id)

    # An edited checkpoint is honoured by the try after the clear (not thrown away), and the edit stays on record.
    assert not any("Starting from the beginning" in line for line in log3), _excerpt(log3)
    assert [a["attempt"] for a in checkpoint["attempts"]] == [1, 2, 3], _attempt_summary(checkpoint)
    events = checkpoint["attempts"][1]["events"]
    assert any(e.get("event") == "reset" and e.get("by") == "admin" for e in events), events


@pytest.mark.parametrize("airflow_stack", ["sqlite"], indirect=True)
def test_rerun_from_on_a_completed_task_shows_the_plan_the_next_try_follows(
    airflow_stack: AirflowStack, example_runs: dict[str, Run]
) -> None:
    """ "Rerun from" after success: the saved views were deleted when the run completed, so the next try also
    reruns the producers of what it reads. The checkpoint view says so before the clear, and the try that
    follows the clear records exactly that plan."""
    api = airflow_stack.client
    run_id = example_runs[RERUN_FROM].run_id
    assert api.wait_for_run(ORDERS_DAG, run_id, timeout=RUN_TIMEOUT) == "success", api.run_report(ORDERS_DAG, run_id)
    query = _inspector_query(run_id)

    edited = api.post("/ppf/api/checkpoint/rerun", {"component": "daily_revenue"}, params=query)
    assert edited["invalidated"] == ["daily_revenue", *LATE], edited.get("invalidated")
    promised = api.get("/ppf/api/checkpoint", params=query)["checkpoint"]["next"]
    assert promised is not None
    predicted = [(e["name"], e["action"], e["reason"]) for e in promised["entries"]]
    # enriched_orders (read by daily_revenue) is gone, and so, upstream, is what enrich_orders reads.
    actions = {name: action for name, action, _ in predicted}
    assert actions["daily_revenue"] == "rerun", predicted
    assert actions["enrich_orders"] == "rerun", predicted
    assert any("deleted when the pipeline completed" in reason for _, _, reason in predicted), predicted

    _clear_task(api, run_id)
    log3, result, checkpoint = _try_after_clear(api, run_id)

    third = checkpoint["attempts"][-1]
    recorded = [(e["name"], e["action"], e["reason"]) for e in third["resume"]["entries"]]
    assert recorded == predicted
    after = api.get("/ppf/api/checkpoint", params=query)["checkpoint"]
    assert [(e["name"], e["action"], e["reason"]) for e in after["resume"]["entries"]] == recorded
    ran = [r["name"] for r in result["ran"]]
    assert ran == [name for name, action, _ in recorded if action in ("run", "rerun")], (ran, recorded)
    assert result["skipped"] == [name for name, action, _ in recorded if action == "skip"], result
    assert third["resume"]["headline"] in "\n".join(log3), _excerpt(log3)
