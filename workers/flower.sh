#!/usr/bin/env sh
# Flower behind basic auth: FLOWER_BASIC_AUTH=user:password (see workers/README.md).
# It listens on 127.0.0.1 unless FLOWER_ADDRESS says otherwise (docker-compose sets 0.0.0.0 inside
# its container; elsewhere put a TLS reverse proxy in front rather than exposing it).
: "${FLOWER_BASIC_AUTH:?set FLOWER_BASIC_AUTH=user:password}"
exec celery -A ethhook.celery_app flower --basic-auth="$FLOWER_BASIC_AUTH" --address="${FLOWER_ADDRESS:-127.0.0.1}" --port="${FLOWER_PORT:-5555}" "$@"
