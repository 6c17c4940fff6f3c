"""Input data of the example pipeline: deterministic CSV files of customers and orders.

Used by the example DAGs and by ``make demo``. Usage: python orders_data.py OUTPUT_DIR [--orders N]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
from pathlib import Path

REGIONS = ["north", "south", "east", "west"]
STATUSES = ["paid", "paid", "paid", "paid", "refunded", "cancelled"]


def generate(out: Path, orders: int = 200_000, customers: int = 5_000, seed: int = 7) -> None:
    """Write ``customers.csv`` and ``orders.csv`` under ``out`` (same content for the same arguments)."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "customers.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer_id", "name", "region", "signup_date"])
        start = dt.date(2023, 1, 1)
        for cid in range(1, customers + 1):
            signup = start + dt.timedelta(days=rng.randrange(700))
            writer.writerow([cid, f"customer-{cid:05d}", rng.choice(REGIONS), signup.isoformat()])
    with open(out / "orders.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["order_id", "customer_id", "order_date", "amount", "status"])
        day0 = dt.date(2026, 10, 1)
        for oid in range(1, orders + 1):
            day = day0 + dt.timedelta(days=rng.randrange(30))
            amount = round(rng.lognormvariate(3.5, 0.8), 2)
            # A few dirty rows the pipeline has to drop: unknown customers and negative amounts.
            customer = rng.randrange(1, customers + 1) if rng.random() > 0.002 else customers + 999
            if rng.random() < 0.001:
                amount = -amount
            writer.writerow([oid, customer, day.isoformat(), f"{amount:.2f}", rng.choice(STATUSES)])


def write_run_data(base_dir: str, run_id: str, orders: int) -> str:
    """Write one DAG run's input files under ``<base_dir>/data/<run_id>`` and return that folder."""
    out = Path(base_dir) / "data" / run_id.replace(":", "_")
    generate(out, orders=orders)
    return str(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--orders", type=int, default=200_000)
    args = parser.parse_args()
    generate(args.out, orders=args.orders)
