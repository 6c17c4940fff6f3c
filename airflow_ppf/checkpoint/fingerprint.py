"""Fingerprints: what a pipeline (and each component) computes, hashed over a canonical encoding.

Covered: each component's name, class_path, config, depends_on and enabled flag. Not covered: Spark
settings, retry and circuit-breaker policies, descriptions (they change *how* a pipeline runs, not what it
produces). The encoding is sorted-key JSON, so it is identical across processes, machines and Python hash
seeds, and no two different configs share an encoding (no concatenation collisions).

A component's fingerprint includes the fingerprints of the components it depends on, so a change
anywhere upstream changes every fingerprint downstream of it.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from airflow_ppf.config.models import ComponentConfig, PipelineConfig

__all__ = [
    "FINGERPRINT_VERSION",
    "canonical_json",
    "compute_component_fingerprints",
    "compute_field_digests",
    "compute_pipeline_fingerprint",
    "describe_field_changes",
    "disabled_in",
]

#: Bumped whenever the encoding changes; part of every hash, so old and new fingerprints never match.
FINGERPRINT_VERSION = 1


def _encode(value: Any) -> Any:
    """Map config values to JSON-native values with explicit type tags for anything else."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"$float": repr(value)}
        return value
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return {"$" + type(value).__name__: value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, set | frozenset):
        return {"$set": sorted(json.dumps(_encode(v), sort_keys=True) for v in value)}
    raise TypeError(
        f"cannot fingerprint a config value of type {type(value).__name__}: {value!r}; "
        "use JSON-compatible values (strings, numbers, booleans, lists, objects)"
    )


def canonical_json(value: Any) -> str:
    """Encode ``value`` as compact JSON with sorted keys (one encoding per value, stable everywhere)."""
    return json.dumps(_encode(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


#: Encodes like :func:`canonical_json` whatever the value holds, *provided every mapping in it has string
#: keys* (JSON sorts integer keys as numbers and writes ``True`` as ``true``; ``_encode`` makes them text).
_PLAIN_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _canonical_plain_json(value: Any) -> str:
    """:func:`canonical_json` of a value whose mappings all have string keys, in one C call when it holds
    only JSON types (the common case: a component's config, which ``ComponentConfig`` makes plain, with
    string keys at every level); other values (dates, decimals, NaN...) take the tagged encoding."""
    try:
        return _PLAIN_ENCODER.encode(value)
    except (TypeError, ValueError):
        return canonical_json(value)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _component_identity(comp: ComponentConfig) -> dict[str, Any]:
    return {
        "name": comp.name,
        "class_path": comp.class_path,
        "config": comp.config,
        "depends_on": sorted(comp.depends_on),
        "enabled": comp.enabled,
    }


def compute_pipeline_fingerprint(config: PipelineConfig) -> str:
    """Return the SHA-256 fingerprint (64 hex characters) of what the pipeline computes.

    Declaration order of components and of ``depends_on`` entries does not matter; Spark settings do
    not count.
    """
    components = sorted((_component_identity(c) for c in config.components), key=lambda c: c["name"])
    return _sha256(_canonical_plain_json({"v": FINGERPRINT_VERSION, "components": components}))


def compute_component_fingerprints(config: PipelineConfig) -> dict[str, str]:
    """Return ``name -> fingerprint`` (16 hex characters) for every component.

    Each fingerprint covers the component's own identity and the fingerprints of its upstream
    components, so it changes when anything the component's result depends on changes.
    """
    by_name = {c.name: c for c in config.components}
    out: dict[str, str] = {}
    for name in config.get_execution_order():
        comp = by_name[name]
        upstream = sorted((dep, out[dep]) for dep in comp.depends_on if dep in out)
        payload = {"v": FINGERPRINT_VERSION, "self": _component_identity(comp), "upstream": upstream}
        out[name] = _sha256(_canonical_plain_json(payload))[:16]
    return {c.name: out[c.name] for c in config.components}


def compute_field_digests(comp: ComponentConfig) -> dict[str, str]:
    """Return short digests of each part of a component, to say *what* changed between two configs.

    Keys are ``class_path``, ``depends_on``, ``enabled`` and ``config.<key>`` for each top-level config
    key. Values are 8 hex characters: enough to tell a change, never the value itself (no secrets leak
    into checkpoints).
    """
    parts: dict[str, Any] = {
        "class_path": comp.class_path,
        "depends_on": sorted(comp.depends_on),
        "enabled": comp.enabled,
    }
    for key, value in comp.config.items():
        parts[f"config.{key}"] = value
    return {key: _sha256(_canonical_plain_json(value))[:8] for key, value in parts.items()}


def describe_field_changes(old: Mapping[str, str] | None, new: Mapping[str, str]) -> str:
    """Say which parts changed between two :func:`compute_field_digests` results (``config.sql changed``)."""
    if old is None:
        return "changed"
    changed = sorted(k for k in new if old.get(k) != new[k])
    removed = sorted(k for k in old if k not in new)
    bits = [f"{k} changed" if k in old else f"{k} added" for k in changed] + [f"{k} removed" for k in removed]
    return ", ".join(bits) if bits else "unchanged"


#: What :func:`compute_field_digests` stores for ``enabled = false``.
_DISABLED_DIGEST = _sha256(canonical_json(False))[:8]


def disabled_in(digests: Mapping[str, str] | None) -> bool:
    """Whether a component's recorded field digests say it is disabled (``enabled = false``)."""
    return digests is not None and digests.get("enabled") == _DISABLED_DIGEST
