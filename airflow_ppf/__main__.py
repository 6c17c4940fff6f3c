"""``python -m airflow_ppf`` is the ``ppf`` command."""

from __future__ import annotations

from airflow_ppf.cli import main

raise SystemExit(main())
