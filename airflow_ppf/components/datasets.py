"""The datasets a component reads and writes, named as OpenLineage names them (plain data, no OpenLineage import).

A component declares what it reads and writes through :attr:`Component.input_datasets` and
:attr:`Component.output_datasets` (``()`` by default). A declaration is either a :class:`DatasetRef`
(a namespace and a name, already final) or a :class:`TableRef` (a catalog table, named once the
catalog is known: :func:`resolve_dataset`). The Airflow-facing layer turns them into OpenLineage datasets
and Airflow assets; nothing here depends on either.

Names follow the OpenLineage naming spec (https://openlineage.io/docs/spec/naming):

============================  =======================================  ========================
location                      namespace                                name
============================  =======================================  ========================
``/data/x``, ``file:///x``    ``file``                                 absolute path
``file://host/x``             ``file://host``                          path
``hdfs://nn:8020/x``          ``hdfs://nn:8020``                       path
``s3://b/k``, ``s3a://b/k``   ``s3://b``                               object key
``gs://b/k``                  ``gs://b``                               object key
``abfss://c@acct.dfs…/x``     ``abfss://c@acct.dfs…``                  path (no leading ``/``)
catalog table (Hive)          ``hive://host:port``                     ``db.table``
catalog table (no Hive)       the table's location (as above)          the location's path
============================  =======================================  ========================

A catalog table is named by its location, like OpenLineage's Spark integration does, with the table
name kept as a *symlink* (:attr:`DatasetRef.table`); with a Hive metastore the symlink is
``hive://host:port`` + ``db.table``.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["CatalogInfo", "DatasetDecl", "DatasetRef", "TableRef", "location_dataset", "resolve_dataset"]

#: Blob stores whose name is the object key (no leading ``/``); ``s3a``/``s3n`` are Hadoop's names for S3.
_OBJECT_STORES = {"s3": "s3", "s3a": "s3", "s3n": "s3", "gs": "gs", "abfss": "abfss", "abfs": "abfs", "wasbs": "wasbs"}


@dataclass(frozen=True)
class DatasetRef:
    """A dataset as OpenLineage names it: ``namespace`` (the data source) and ``name`` (the dataset in it).

    ``table`` / ``table_namespace``: the catalog table stored at this location, when there is one (an
    OpenLineage symlink of type ``TABLE``).
    """

    namespace: str
    name: str
    table: str | None = None
    table_namespace: str | None = None

    @property
    def uri(self) -> str:
        """Namespace and name as one URI (``file:///data/x``, ``s3://b/k``): also the Airflow asset's URI."""
        if self.namespace == "file":
            return "file://" + self.name
        return self.namespace + ("" if self.name.startswith("/") else "/") + self.name


@dataclass(frozen=True)
class TableRef:
    """A catalog table (``db.table``, ``table`` or ``catalog.db.table``), at ``location`` when known."""

    table: str
    location: str | None = None


#: What a component declares: a final dataset, or a catalog table named once the catalog is known.
DatasetDecl = DatasetRef | TableRef


@dataclass(frozen=True)
class CatalogInfo:
    """What names a catalog table: Spark's warehouse folder and, with Hive, the metastore's URI."""

    warehouse: str = "spark-warehouse"
    metastore_uri: str | None = None

    @classmethod
    def from_spark_conf(cls, conf: Mapping[str, str]) -> CatalogInfo:
        """Read ``spark.sql.warehouse.dir`` and, when ``spark.sql.catalogImplementation`` is ``hive``, the
        metastore URI (``spark.hadoop.hive.metastore.uris`` or ``spark.sql.hive.metastore.uris``)."""
        metastore = None
        if str(conf.get("spark.sql.catalogImplementation", "")).lower() == "hive":
            for key in ("spark.hadoop.hive.metastore.uris", "spark.sql.hive.metastore.uris", "hive.metastore.uris"):
                if conf.get(key):
                    metastore = str(conf[key]).split(",")[0].strip()
                    break
        return cls(warehouse=str(conf.get("spark.sql.warehouse.dir") or "spark-warehouse"), metastore_uri=metastore)


def location_dataset(location: str, *, table: str | None = None, table_namespace: str | None = None) -> DatasetRef:
    """Name the files at ``location`` (a path or any Hadoop URI) per the OpenLineage naming spec.

    A relative path is taken relative to the working directory, as Spark takes it.
    """
    parts = urlsplit(location)
    scheme = parts.scheme.lower()
    if not scheme or (len(scheme) == 1 and os.name == "nt"):
        return DatasetRef("file", _clean_path(os.path.abspath(location)), table, table_namespace)
    path = _clean_path(parts.path or "/")
    if scheme == "file":
        host = parts.netloc if parts.netloc not in ("", "localhost") else ""
        return DatasetRef(f"file://{host}" if host else "file", path, table, table_namespace)
    if scheme in _OBJECT_STORES:
        return DatasetRef(f"{_OBJECT_STORES[scheme]}://{parts.netloc}", path.lstrip("/"), table, table_namespace)
    return DatasetRef(f"{scheme}://{parts.netloc}" if parts.netloc else scheme, path, table, table_namespace)


def resolve_dataset(decl: DatasetDecl, catalog: CatalogInfo | None = None) -> DatasetRef:
    """Name a declaration: a :class:`DatasetRef` as it is, a :class:`TableRef` from its location, else from
    Spark's default table path in ``catalog``'s warehouse (``<warehouse>/<table>`` in the default
    database, ``<warehouse>/<db>.db/<table>`` in others)."""
    if isinstance(decl, DatasetRef):
        return decl
    catalog = catalog or CatalogInfo()
    database, table = _split_table(decl.table)
    qualified = f"{database}.{table}"
    if catalog.metastore_uri:
        metastore = urlsplit(catalog.metastore_uri)
        symlink_namespace = f"hive://{metastore.hostname or ''}" + (f":{metastore.port}" if metastore.port else "")
    else:
        symlink_namespace = location_dataset(catalog.warehouse).uri
    location = decl.location
    if location is None:
        folder = table if database == "default" else posixpath.join(f"{database}.db", table)
        location = catalog.warehouse.rstrip("/") + "/" + folder
    return location_dataset(location, table=qualified, table_namespace=symlink_namespace)


def _split_table(name: str) -> tuple[str, str]:
    parts = [p.strip("`").lower() for p in name.split(".")]
    if len(parts) == 1:
        return "default", parts[0]
    return parts[-2], parts[-1]  # catalog.db.table: the session catalog's database and table


def _clean_path(path: str) -> str:
    cleaned = posixpath.normpath(path) if path else "/"
    return "/" if cleaned in ("", ".") else cleaned
