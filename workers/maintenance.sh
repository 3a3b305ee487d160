#!/usr/bin/env sh
# The maintenance worker (see workers/README.md).
exec ethhook-worker -Q maintenance -P prefork -c 1 -n maintenance@%h -l "${ETHHOOK_LOG_LEVEL:-INFO}" "$@"
