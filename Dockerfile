# The hotline webhook server. Build: docker build -t hotline .
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
COPY speech speech
COPY hotline hotline
RUN pip install . && mkdir -p /app/var && chown hotline:hotline /app/var

COPY config config

USER hotline
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"

CMD ["hotline", "serve", "--host", "0.0.0.0", "--port", "8080", "--config", "/app/config"]
