# EthHook: one image for every process (listener, workers, beat, Flower, migrations).
# The command is chosen per service in docker-compose.yml; see workers/README.md.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin ethhook

WORKDIR /app
COPY pyproject.toml README.md alembic.ini celeryconfig.py ./
COPY ethhook ./ethhook
COPY migrations ./migrations
COPY workers ./workers
# Editable install: `ethhook db upgrade` finds alembic.ini and migrations/ next to the package.
RUN pip install -e . && chmod 0755 workers/*.sh

USER ethhook
# Listener /metrics + /health, worker /metrics, Flower.
EXPOSE 3000 9808 5555
CMD ["ethhook", "--help"]
