"""Provider registration: what ``airflow providers list`` and Airflow's provider manager read.

Keep this cheap and import-free: Airflow calls it while it initialises its configuration.
"""

from __future__ import annotations

from typing import Any

from airflow_ppf import __version__
from airflow_ppf.settings import DEFAULT_CHECKPOINT_DIR

__all__ = ["get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Return the provider description (schema: Airflow's ``provider_info.schema.json``)."""
    return {
        "package-name": "airflow-ppf",
        "name": "PySpark Pipelines (ppf)",
        "description": (
            "Configuration-driven PySpark pipelines run in one task, with checkpoint & resume: "
            "an Airflow retry skips the components that already finished."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "PySpark Pipelines",
                "external-doc-url": "https://spark.apache.org/",
                "tags": ["apache"],
            }
        ],
        "operators": [{"integration-name": "PySpark Pipelines", "python-modules": ["airflow_ppf.operators.pipeline"]}],
        "hooks": [{"integration-name": "PySpark Pipelines", "python-modules": ["airflow_ppf.hooks.spark_connection"]}],
        "extra-links": ["airflow_ppf.links.checkpoint.CheckpointLink"],
        "config": {
            "ppf": {
                "description": "Defaults of PipelineOperator (airflow-ppf).",
                "options": {
                    "checkpoint_dir": {
                        "description": (
                            "Folder for checkpoints when the task state store is not available (or when "
                            "checkpoint_store='local' is chosen). Use a folder every worker can reach."
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/shared/ppf/checkpoints",
                        "default": DEFAULT_CHECKPOINT_DIR,
                    },
                    "data_location": {
                        "description": (
                            "Where temp views of finished components are saved so a retry (possibly on another "
                            "worker) can restore them: any Spark-writable URI (file://, hdfs://, s3a://...). "
                            "Empty means <checkpoint_dir>/_data."
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "s3a://my-bucket/ppf-data",
                        "default": "",
                    },
                },
            }
        },
    }
