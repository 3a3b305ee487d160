#!/usr/bin/env sh
# The maintenance worker (see workers/README.md).
exec celery -A ethhook.celery_app worker -Q maintenance -P prefork -c 1 -n maintenance@%h -l "${ETHHOOK_LOG_LEVEL:-INFO}" "$@"
