"""Read a YAML file into plain data, remembering the line of every value.

pydantic reports an error as a path of keys; this map turns that path into a line of the
file so that ops see `menus.yaml:42` rather than a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Location = tuple[str, ...]
# libyaml's loader, where PyYAML was built with it: the same nodes and marks, and a tenth of
# the time (the example files are most of a config, and a reload runs under live calls).
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class YamlDocument:
    path: Path
    data: Any
    lines: dict[Location, int]

    def line_of(self, location: tuple[str | int, ...]) -> int | None:
        """The line of the deepest part of `location` that exists in the file."""
        parts = tuple(str(p) for p in location)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get((), None)


class YamlSyntaxError(Exception):
    def __init__(self, path: Path, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message
        super().__init__(f"{path}:{line}: {message}")


def read_yaml(path: Path) -> YamlDocument:
    text = path.read_text(encoding="utf-8")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Location, int] = {}
        data = _convert(loader, node, (), lines) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise YamlSyntaxError(path, line, str(exc.problem or exc)) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(path, None, str(exc)) from None
    finally:
        loader.dispose()
    return YamlDocument(path=path, data=data, lines=lines)


def _convert(
    loader: yaml.SafeLoader, node: yaml.Node, here: Location, lines: dict[Location, int]
) -> Any:
    lines.setdefault(here, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(loader.construct_object(key_node, deep=True))
            lines[(*here, key)] = key_node.start_mark.line + 1
            result[key] = _convert(loader, value_node, (*here, key), lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, (*here, str(i)), lines) for i, item in enumerate(node.value)]
    try:
        return loader.construct_object(node, deep=True)
    except ValueError:
        # A date-shaped scalar that is no date (2026-02-30) makes PyYAML raise a bare
        # ValueError; keep the text so the schema reports it with its field and line.
        return node.value
