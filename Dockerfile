# The feature pipeline on the CPU: `docker build -t loto-features .`
# Runs any subcommand: `docker run --rm -e DATABASE_URL=... loto-features python -m python_jobs demo`.
# docker-compose.yml wires it to PostgreSQL and Redis; docs/DEPLOYMENT_GUIDE.md says more.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NUMBA_CACHE_DIR=/app/.local/numba_cache \
    DBT_SEND_ANONYMOUS_USAGE_STATS=False \
    DO_NOT_TRACK=1

# make: the image runs the same targets as a checkout (make demo, make docs).
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The exact pins first, so a code change does not reinstall the dependencies.
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock

COPY . .
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e . \
    && python -m python_jobs warmup \
    && useradd --create-home --uid 10001 loto \
    && mkdir -p /app/reports /app/target /app/logs \
    && chown -R loto /app
USER loto

HEALTHCHECK --interval=60s --timeout=30s CMD ["python", "-m", "python_jobs", "health"]
CMD ["python", "-m", "python_jobs", "demo"]
