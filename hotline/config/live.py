"""The config a running process serves with, reloaded when the files change or on SIGHUP.

An invalid file never takes the line down: the last good config stays in service and the
errors are logged and shown on /healthz until the files are fixed.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from pathlib import Path

import structlog

from hotline.config import ConfigInvalid, LoadedConfig, load_config
from hotline.config.load import config_files

log = structlog.get_logger("hotline.config")


# Configs kept after a reload, for the calls that started on them.
KEEP_PREVIOUS = 4


class LiveConfig:
    def __init__(self, loaded: LoadedConfig) -> None:
        self.current = loaded
        self.errors: list[str] = []
        self._previous: OrderedDict[str, LoadedConfig] = OrderedDict()
        self._asked: asyncio.Future[bool] | None = None
        self._fingerprint = _fingerprint(loaded.directory)

    @property
    def directory(self) -> Path:
        return self.current.directory

    async def reload_off_loop(self) -> bool:
        """Load the files again, in a thread (a second or so of YAML and checks) so webhooks
        are answered meanwhile; keep the running config unless the new one is valid."""
        self._fingerprint = _fingerprint(self.directory)
        try:
            loaded = await asyncio.to_thread(load_config, self.directory)
        except ConfigInvalid as exc:
            return self._refuse(exc)
        return self._take(loaded)

    def ask_reload(self) -> None:
        """SIGHUP: reload now, off the event loop."""
        if self._asked is None or self._asked.done():
            self._asked = asyncio.ensure_future(self.reload_off_loop())

    def _refuse(self, exc: ConfigInvalid) -> bool:
        self.errors = [str(e) for e in exc.errors]
        log.error("config_rejected", errors=self.errors, kept=self.current.digest)
        return False

    def _take(self, loaded: LoadedConfig) -> bool:
        self.errors = []
        if loaded.digest != self.current.digest:
            log.info(
                "config_loaded",
                digest=loaded.digest,
                previous=self.current.digest,
                warnings=list(loaded.warnings),
            )
            self._keep(self.current)
            self.current = loaded
        return True

    def for_call(self, digest: str | None) -> LoadedConfig:
        """The config a call started on, while it is kept (a call lasts minutes, and only
        the last few are); otherwise, or for a call that did not say, the current one."""
        if digest is None or digest == self.current.digest:
            return self.current
        return self._previous.get(digest, self.current)

    def _keep(self, loaded: LoadedConfig) -> None:
        self._previous[loaded.digest] = loaded
        self._previous.move_to_end(loaded.digest)
        while len(self._previous) > KEEP_PREVIOUS:
            self._previous.popitem(last=False)

    def changed_on_disk(self) -> bool:
        return _fingerprint(self.directory) != self._fingerprint

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            if self.changed_on_disk():
                await self.reload_off_loop()


def _fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    stamps = []
    for path in config_files(directory):
        try:
            stat = path.stat()
            stamps.append((path.name, stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append((path.name, -1, -1))
    return tuple(stamps)
