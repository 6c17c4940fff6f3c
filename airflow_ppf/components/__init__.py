"""Components: the steps of a pipeline, how they are built from config, and built-in Spark components.

The built-in Spark components live in :mod:`airflow_ppf.components.spark` (``ReadFiles``, ``ReadTable``,
``SqlTransform``, ``WriteFiles``, ``WriteTable``); importing them does not import pyspark.
"""

from __future__ import annotations

from airflow_ppf.components.base import Component, DataFlow, PipelineComponent, SparkSessionNotAvailableError
from airflow_ppf.components.datasets import DatasetRef, TableRef
from airflow_ppf.components.errors import ComponentError, ComponentExecutionError, ComponentInstantiationError
from airflow_ppf.components.loading import (
    ComponentLoadError,
    create_component,
    instantiate_component,
    load_component_class,
)
from airflow_ppf.components.protocols import ConfigurableInstance, Resource, SchemaContract

__all__ = [
    "Component",
    "ComponentError",
    "ComponentExecutionError",
    "ComponentInstantiationError",
    "ComponentLoadError",
    "ConfigurableInstance",
    "DataFlow",
    "DatasetRef",
    "PipelineComponent",
    "Resource",
    "SchemaContract",
    "SparkSessionNotAvailableError",
    "TableRef",
    "create_component",
    "instantiate_component",
    "load_component_class",
]
