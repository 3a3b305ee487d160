#!/usr/bin/env sh
# Celery beat: schedules the maintenance jobs declared in celeryconfig.py (see workers/README.md).
exec celery -A ethhook.celery_app beat -s "${ETHHOOK_BEAT_SCHEDULE_FILE:-/tmp/ethhook-beat-schedule}" -l "${ETHHOOK_LOG_LEVEL:-INFO}" "$@"
