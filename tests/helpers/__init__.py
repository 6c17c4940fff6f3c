"""Test helpers importable by ``class_path`` (``tests.helpers.components.Step``): tiny components and builders.

Importable because ``pyproject.toml`` puts the project root on ``sys.path`` (``pythonpath = ["."]``).
"""

from __future__ import annotations
