"""The scaled-out topology of docker-compose.yml and deploy/nginx.conf, read as files.

Images cannot be pulled here, so nothing is started: the compose file is parsed and its
services, dependencies, health checks and environment are checked against what the app
reads; `docker compose config` validates it too where a compose binary is installed.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from hotline.settings import Settings
from tests.support.paths import ROOT

COMPOSE = ROOT / "docker-compose.yml"
NGINX = ROOT / "deploy" / "nginx.conf"
ENV_EXAMPLE = ROOT / ".env.example"
SERVERS = ("hotline-1", "hotline-2")
# Settings a process behind a load balancer cannot do without: the auth token (no webhook
# can be checked), the public URL (the proxy's URL is not the one Twilio signed), the ops
# token (the API refuses everyone), and a database and Redis shared by every process.
REQUIRED = (
    "TWILIO_AUTH_TOKEN",
    "HOTLINE_PUBLIC_URL",
    "HOTLINE_ADMIN_TOKEN",
    "HOTLINE_DATABASE_URL",
    "HOTLINE_REDIS_URL",
)
TWILIO_TIMEOUT_S = 15


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, as `docker compose` reads them."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        given = env.get(name, "")
        if op == ":?" and not given:
            raise AssertionError(f"{name} is required: {arg}")
        if op == ":-" and not given:
            return arg
        return given

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:[-?])([^}]*))?\}", one, value)


def resolved_env(service: str) -> dict[str, str]:
    raw = services()[service].get("environment") or {}
    return {name: interpolate(str(value), env_example()) for name, value in raw.items()}


def from_env_keys() -> set[str]:
    """Every variable `Settings.from_env` reads (`env.get("NAME", ...)`)."""
    tree = ast.parse((ROOT / "hotline" / "settings.py").read_text(encoding="utf-8"))
    keys = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "env"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            keys.add(str(node.args[0].value))
    return keys


def nginx_upstreams() -> dict[str, list[str]]:
    """Each `upstream NAME { server ADDRESS ...; }` block: NAME -> the addresses."""
    text = re.sub(r"#.*", "", NGINX.read_text(encoding="utf-8"))
    blocks = re.findall(r"upstream\s+(\S+)\s*\{([^}]*)\}", text)
    return {name: re.findall(r"^\s*server\s+([^\s;]+)", body, re.M) for name, body in blocks}


def nginx_directives(name: str) -> list[str]:
    text = re.sub(r"#.*", "", NGINX.read_text(encoding="utf-8"))
    return re.findall(rf"^\s*{name}\s+([^;]+);", text, re.M)


def seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)?", value.strip()).groups()  # type: ignore[union-attr]
    return int(number) * {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[unit]


def test_the_services_of_the_topology() -> None:
    assert set(services()) == {
        "nginx",
        *SERVERS,
        "speech-worker",
        "migrate",
        "postgres",
        "redis",
    }
    found = services()
    assert found["nginx"]["image"].startswith("nginx:")
    assert found["postgres"]["image"] == "postgres:15"
    assert found["redis"]["image"] == "redis:7"
    for name in (*SERVERS, "speech-worker", "migrate"):
        # One image, built from this repository's Dockerfile.
        assert found[name]["build"] == ".", name
        assert found[name]["image"] == found["hotline-1"]["image"], name
    for name in SERVERS:
        assert found[name]["command"][:2] == ["hotline", "serve"]
        assert found[name]["command"][found[name]["command"].index("--host") + 1] == "0.0.0.0"
    assert found["speech-worker"]["command"] == ["hotline", "speech-worker"]
    assert found["migrate"]["command"] == ["hotline", "db", "upgrade"]
    assert found["migrate"]["restart"] == "no"


def test_servers_share_the_database_and_redis() -> None:
    envs = {name: resolved_env(name) for name in (*SERVERS, "speech-worker", "migrate")}
    for name, env in envs.items():
        assert env["HOTLINE_DATABASE_URL"] == envs["hotline-1"]["HOTLINE_DATABASE_URL"], name
        assert env["HOTLINE_REDIS_URL"] == envs["hotline-1"]["HOTLINE_REDIS_URL"], name
    settings = Settings.from_env(envs["hotline-1"])
    assert settings.database_url.startswith("postgresql://")
    assert "@postgres:5432/" in settings.database_url  # the compose service, not a localhost
    assert settings.redis_url == "redis://redis:6379/0"
    assert envs["hotline-1"]["HOTLINE_SPEECH"] == "queue"
    settings.check_can_serve()
    # The database user and password of the URL are the postgres service's own.
    postgres = {
        k: interpolate(str(v), env_example())
        for k, v in services()["postgres"]["environment"].items()
    }
    user_pw = f"{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@"
    assert f"//{user_pw}postgres:5432/{postgres['POSTGRES_DB']}" in settings.database_url


def test_every_required_setting_is_provided_and_every_name_is_read() -> None:
    read = from_env_keys()
    assert set(REQUIRED) <= read  # the names above are the app's own
    for name in SERVERS:
        raw = services()[name]["environment"]
        for var in REQUIRED:
            assert var in raw, (name, var)
            assert resolved_env(name)[var], (name, var)
        for var in raw:
            # A misspelt name would silently leave the default in place.
            assert var in read, f"{name}: nothing reads {var}"
    # Every variable of the documented .env is used by the compose file.
    text = COMPOSE.read_text(encoding="utf-8")
    for var in env_example():
        assert f"${{{var}" in text, f"{var} of .env.example is not used"


def test_a_missing_secret_stops_compose() -> None:
    raw = services()["hotline-1"]["environment"]["TWILIO_AUTH_TOKEN"]
    with pytest.raises(AssertionError, match="TWILIO_AUTH_TOKEN"):
        interpolate(raw, {})


def test_start_order_and_healthchecks() -> None:
    found = services()
    for name in ("postgres", "redis", *SERVERS, "nginx"):
        test = found[name]["healthcheck"]["test"]
        assert test and test[0] in {"CMD", "CMD-SHELL"}, name
    assert "pg_isready" in " ".join(found["postgres"]["healthcheck"]["test"])
    assert found["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"][-2:]
    assert "/healthz" in " ".join(found["hotline-1"]["healthcheck"]["test"])
    assert found["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in (*SERVERS, "speech-worker"):
        depends = found[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
    for name in SERVERS:
        assert found["nginx"]["depends_on"][name]["condition"] == "service_healthy"


def test_only_nginx_is_published() -> None:
    found = services()
    assert [p.split(":")[-1] for p in found["nginx"]["ports"]] == ["80"]
    assert "8080" in interpolate(found["nginx"]["ports"][0], env_example())
    for name, service in found.items():
        if name != "nginx":
            assert "ports" not in service, name
    for name in SERVERS:
        assert found[name]["expose"] == ["8080"]
        assert found[name]["command"][found[name]["command"].index("--port") + 1] == "8080"
    mounts = found["nginx"]["volumes"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in mounts


def test_nginx_balances_both_servers() -> None:
    upstreams = nginx_upstreams()
    assert set(upstreams) == {"hotline"}
    assert sorted(upstreams["hotline"]) == [f"{name}:8080" for name in SERVERS]
    text = re.sub(r"#.*", "", NGINX.read_text(encoding="utf-8"))
    # Round robin: nginx's default, unless another method is named in the block.
    assert not re.search(r"\b(least_conn|ip_hash|hash|random)\b", text)
    assert set(nginx_directives("proxy_pass")) == {"http://hotline"}
    assert nginx_directives("listen") == ["80"]


def test_nginx_passes_what_signatures_need() -> None:
    headers = dict(
        line.split(None, 1) for line in nginx_directives("proxy_set_header") if " " in line
    )
    assert headers["Host"] == "$host"
    assert headers["X-Forwarded-Proto"] == "$scheme"
    assert headers["X-Forwarded-For"] == "$proxy_add_x_forwarded_for"
    # The body limit is the app's: a bigger body gets 413 at the edge, as from the app.
    (limit,) = nginx_directives("client_max_body_size")
    assert limit.endswith("k") and int(limit[:-1]) * 1024 == Settings().max_body_bytes
    # Every timeout a webhook can meet ends before Twilio's own 15 s.
    for name in ("proxy_connect_timeout", "proxy_read_timeout", "proxy_send_timeout"):
        first = nginx_directives(name)[0]
        assert seconds(first) < TWILIO_TIMEOUT_S, name
    (total,) = nginx_directives("proxy_next_upstream_timeout")
    assert seconds(total) < TWILIO_TIMEOUT_S


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_validates_the_file() -> None:
    command = compose_command()
    if command is None:
        if os.environ.get("HOTLINE_REQUIRE_COMPOSE") == "1":
            pytest.fail("docker compose is required (`make test` installs Debian's) but absent")
        pytest.skip("no docker compose here")
    run = subprocess.run(
        [*command, "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(COMPOSE).parent,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr


def test_the_image_holds_every_package_the_project_ships() -> None:
    """The Dockerfile copies the source folders one by one: a new top-level package that is
    not copied builds an image that cannot import it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY (\w+) \1$", dockerfile, re.M))
    assert shipped <= copied, f"not copied into the image: {sorted(shipped - copied)}"
