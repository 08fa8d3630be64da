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


class _MarkedConstructor:
    """Builds MarkedDict/MarkedList from nodes; mixed into both loaders below."""
    file = "<flow>"
    problems: list[FlowProblem]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> MarkedDict:  # type: ignore[override]
        self.flatten_mapping(node)  # type: ignore[attr-defined]
        result = MarkedDict()
        result.mark = _mark(node, self.file)
        result.key_marks, result.value_marks = {}, {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[attr-defined]
            if key in result:
                self.problems.append(FlowProblem(_mark(key_node, self.file), f"duplicate key {key!r}"))
            result[key] = self.construct_object(value_node, deep=True)  # type: ignore[attr-defined]
            result.key_marks[key] = _mark(key_node, self.file)
            result.value_marks[key] = _mark(value_node, self.file)
        return result

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> MarkedList:  # type: ignore[override]
        result = MarkedList(self.construct_object(child, deep=True) for child in node.value)  # type: ignore[attr-defined]
        result.mark = _mark(node, self.file)
        result.item_marks = [_mark(child, self.file) for child in node.value]
        return result


class _Loader(_MarkedConstructor, yaml.SafeLoader):
    """PyYAML's own parser: its error messages are the ones reported for malformed YAML."""


# libyaml's parser (C, about ten times faster) when PyYAML was built with it: the same nodes and
# marks, so flows load the same; only its error wording differs, so a file it refuses is parsed
# again by _Loader for the message.
_FastLoader: type | None = None
if getattr(yaml, "__with_libyaml__", False):
    class _FastLoader(_MarkedConstructor, yaml.CSafeLoader):  # type: ignore[no-redef]
        pass


for _loader in (_Loader, _FastLoader):
    if _loader is not None:
        _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _loader.construct_mapping)
        _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _loader.construct_sequence)


def load_marked(text: str, file: str) -> tuple[Any, list[FlowProblem]]:
    """Parse YAML; returns (data, problems). Malformed YAML is one problem at the parser's mark."""
    if _FastLoader is not None:
        fast = _FastLoader(text)
        fast.file, fast.problems = file, []
        try:
            return fast.get_single_data(), fast.problems
        except yaml.YAMLError:
            pass  # reported below, in PyYAML's words
        finally:
            fast.dispose()
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
