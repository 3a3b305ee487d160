#!/usr/bin/env sh
# The match worker (see workers/README.md).
exec ethhook-worker -Q match -P prefork -c ${ETHHOOK_MATCH_CONCURRENCY:-2} -n match@%h -l "${ETHHOOK_LOG_LEVEL:-INFO}" "$@"
