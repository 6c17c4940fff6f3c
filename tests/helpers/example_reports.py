"""What the example pipelines must write, computed in plain Python from their input CSV files.

The example DAGs' tests (``dag.test()``, the end-to-end tier, the Spark tier) compare the rows a run wrote
with these, value by value: a report that is empty, or holds another region's rows, fails.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

#: The region report keeps this many customers (``LIMIT 20`` in region_pipeline.conf).
TOP_CUSTOMERS = 20


def _customers(data_dir: Path) -> dict[int, str]:
    with open(data_dir / "customers.csv", newline="", encoding="utf-8") as fh:
        return {int(row["customer_id"]): row["region"] for row in csv.DictReader(fh)}


def _orders(data_dir: Path) -> list[dict[str, str]]:
    with open(data_dir / "orders.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def expected_daily_revenue(data_dir: Path) -> dict[tuple[dt.date, str], tuple[int, Decimal]]:
    """``(order_date, region) -> (orders, revenue)`` of paid, positive orders of known customers."""
    regions = _customers(data_dir)
    totals: dict[tuple[dt.date, str], list[Any]] = defaultdict(lambda: [0, Decimal("0")])
    for order in _orders(data_dir):
        amount, customer = Decimal(order["amount"]), int(order["customer_id"])
        if order["status"] != "paid" or amount <= 0 or customer not in regions:
            continue
        key = (dt.date.fromisoformat(order["order_date"]), regions[customer])
        totals[key][0] += 1
        totals[key][1] += amount
    return {key: (n, revenue) for key, (n, revenue) in totals.items()}


def expected_region_customers(data_dir: Path, region: str) -> dict[int, tuple[int, Decimal]]:
    """``customer_id -> (orders, revenue)`` of the paid orders of ``region``'s customers."""
    regions = _customers(data_dir)
    totals: dict[int, list[Any]] = defaultdict(lambda: [0, Decimal("0")])
    for order in _orders(data_dir):
        customer = int(order["customer_id"])
        if order["status"] == "paid" and regions.get(customer) == region:
            totals[customer][0] += 1
            totals[customer][1] += Decimal(order["amount"])
    return {customer: (n, revenue) for customer, (n, revenue) in totals.items()}


def read_parquet_rows(path: Path) -> list[dict[str, Any]]:
    """Every row of a parquet folder (hive partition columns included)."""
    import pyarrow.dataset as ds

    return ds.dataset(path, format="parquet", partitioning="hive").to_table().to_pylist()


def check_daily_revenue(report: Path, data_dir: Path) -> int:
    """Assert the orders example's report holds exactly the expected rows; return how many."""
    rows = read_parquet_rows(report)
    got = {(r["order_date"], str(r["region"])): (r["orders"], r["revenue"]) for r in rows}
    expected = expected_daily_revenue(data_dir)
    assert rows, f"empty report at {report}"
    assert len(got) == len(rows), "a (date, region) appears twice"
    differ = sorted(k for k in set(got) | set(expected) if got.get(k) != expected.get(k))
    assert not differ, [(k, got.get(k), expected.get(k)) for k in differ[:5]]
    return len(rows)


def check_region_report(report: Path, data_dir: Path, region: str) -> int:
    """Assert a region report holds that region's top customers, with their values; return how many rows."""
    rows = read_parquet_rows(report)
    expected = expected_region_customers(data_dir, region)
    assert rows, f"empty report for region {region!r} at {report}"
    assert len(rows) == min(TOP_CUSTOMERS, len(expected)), (len(rows), len(expected))
    strangers = [r["customer_id"] for r in rows if r["customer_id"] not in expected]
    assert not strangers, f"customers of other regions in the {region!r} report: {strangers}"
    for row in rows:
        assert (row["orders"], row["revenue"]) == expected[row["customer_id"]], row
    # The top ones by revenue (ties at the cut may pick either customer, never a smaller revenue).
    top = sorted((revenue for _, revenue in expected.values()), reverse=True)[: len(rows)]
    assert sorted((r["revenue"] for r in rows), reverse=True) == top
    return len(rows)
