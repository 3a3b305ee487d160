#!/usr/bin/env sh
# Flower behind basic auth: FLOWER_BASIC_AUTH=user:password (see workers/README.md).
: "${FLOWER_BASIC_AUTH:?set FLOWER_BASIC_AUTH=user:password}"
exec celery -A ethhook.celery_app flower --basic-auth="$FLOWER_BASIC_AUTH" --port="${FLOWER_PORT:-5555}" "$@"
