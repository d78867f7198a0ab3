from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigError:
    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field or '(file)'}: {self.message}"


class ConfigInvalid(Exception):
    """The config directory cannot be used; every error is listed, not just the first."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))
