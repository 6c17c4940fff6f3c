"""A module whose import fails (component loading must report it, naming the class path)."""

from __future__ import annotations

raise RuntimeError("import-time failure in broken_import")
