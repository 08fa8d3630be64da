"""YAML loading that keeps where every key and value came from.

Mappings load as `MarkedDict` (a dict with `.mark_of(key)` / `.value_mark(key)`), sequences as
`MarkedList` (`.mark_at(i)`), so the validator can point at the exact line and column.
Duplicate keys are reported, not silently overwritten as PyYAML does.
"""
from __future__ import annotations

from typing import Any

import yaml

from .errors import FlowProblem, Mark


class MarkedDict(dict):
    mark: Mark
    key_marks: dict[Any, Mark]
    value_marks: dict[Any, Mark]

    def mark_of(self, key: Any) -> Mark:
        return self.key_marks.get(key, self.mark)

    def value_mark(self, key: Any) -> Mark:
        return self.value_marks.get(key, self.mark_of(key))


class MarkedList(list):
    mark: Mark
    item_marks: list[Mark]

    def mark_at(self, index: int) -> Mark:
        return self.item_marks[index] if index < len(self.item_marks) else self.mark


def _mark(node: yaml.Node, file: str) -> Mark:
    return Mark(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Loader(yaml.SafeLoader):
    file = "<flow>"
    problems: list[FlowProblem]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> MarkedDict:  # type: ignore[override]
        self.flatten_mapping(node)
        result = MarkedDict()
        result.mark = _mark(node, self.file)
        result.key_marks, result.value_marks = {}, {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in result:
                self.problems.append(FlowProblem(_mark(key_node, self.file), f"duplicate key {key!r}"))
            result[key] = self.construct_object(value_node, deep=True)
            result.key_marks[key] = _mark(key_node, self.file)
            result.value_marks[key] = _mark(value_node, self.file)
        return result

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> MarkedList:  # type: ignore[override]
        result = MarkedList(self.construct_object(child, deep=True) for child in node.value)
        result.mark = _mark(node, self.file)
        result.item_marks = [_mark(child, self.file) for child in node.value]
        return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _Loader.construct_sequence)


def load_marked(text: str, file: str) -> tuple[Any, list[FlowProblem]]:
    """Parse YAML; returns (data, problems). Malformed YAML is one problem at the parser's mark."""
    loader = _Loader(text)
    loader.file = file
    loader.problems = []
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Mark(file, mark.line + 1, mark.column + 1) if mark else Mark(file, 1, 1)
        return None, [FlowProblem(where, f"malformed YAML: {exc.problem or exc.context}")]
    except yaml.YAMLError as exc:
        return None, [FlowProblem(Mark(file, 1, 1), f"malformed YAML: {exc}")]
    finally:
        loader.dispose()
    return data, loader.problems
