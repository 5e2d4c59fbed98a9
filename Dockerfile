# syntax=docker/dockerfile:1
# Production image: DATABASE_URL must point at PostgreSQL >= 15. `snodo serve` migrates, then serves.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install .

FROM python:3.11-slim AS runtime
RUN useradd --system --uid 10001 --create-home --home-dir /srv/snodo snodo
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/snodo
COPY --chown=snodo:snodo migrations ./migrations
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SNODO_ENVIRONMENT=production
USER snodo
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
# Behind a reverse proxy, set SNODO_TRUSTED_PROXIES to its addresses (JSON list): only then are its
# X-Forwarded-* headers believed.
CMD ["snodo", "serve", "--host", "0.0.0.0", "--port", "8000"]
