"""The config a running process serves with, reloaded when the files change or on SIGHUP.

An invalid file never takes the line down: the last good config stays in service and the
errors are logged and shown on /healthz until the files are fixed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from hotline.config import ConfigInvalid, LoadedConfig, load_config
from hotline.config.load import config_files

log = structlog.get_logger("hotline.config")


class LiveConfig:
    def __init__(self, loaded: LoadedConfig) -> None:
        self.current = loaded
        self.errors: list[str] = []
        self._fingerprint = _fingerprint(loaded.directory)

    @property
    def directory(self) -> Path:
        return self.current.directory

    def reload(self) -> bool:
        """Load the files again; keep the running config unless the new one is valid."""
        self._fingerprint = _fingerprint(self.directory)
        try:
            loaded = load_config(self.directory)
        except ConfigInvalid as exc:
            self.errors = [str(e) for e in exc.errors]
            log.error("config_rejected", errors=self.errors, kept=self.current.digest)
            return False
        self.errors = []
        if loaded.digest != self.current.digest:
            log.info(
                "config_loaded",
                digest=loaded.digest,
                previous=self.current.digest,
                warnings=list(loaded.warnings),
            )
            self.current = loaded
        return True

    def changed_on_disk(self) -> bool:
        return _fingerprint(self.directory) != self._fingerprint

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            if self.changed_on_disk():
                self.reload()


def _fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    stamps = []
    for path in config_files(directory):
        try:
            stat = path.stat()
            stamps.append((path.name, stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append((path.name, -1, -1))
    return tuple(stamps)
