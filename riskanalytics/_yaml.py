"""YAML loading shared by config.yaml and the decisions file."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["DuplicateKeyLoader"]


class DuplicateKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that notes keys set twice in one mapping, as
    ``(line, key, problem)``, in block mappings and in a flow mapping on one
    line (``{action: reject, action: confirm}``) alike."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.duplicates: list[tuple[int, str, str]] = []

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    seen = key in first
                except TypeError:  # an unhashable key: PyYAML refuses it itself
                    continue
                if not seen:
                    first[key] = line
                    continue
                lines = (
                    f"on line {line}"
                    if first[key] == line
                    else f"on line {first[key]} and line {line}"
                )
                self.duplicates.append(
                    (line, str(key), f"set twice, {lines}; keep one")
                )
        return super().construct_mapping(node, deep=deep)
