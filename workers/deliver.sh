#!/usr/bin/env sh
# The deliver worker (see workers/README.md).
exec ethhook-worker -Q deliver -P gevent -c ${ETHHOOK_DELIVER_CONCURRENCY:-100} -n deliver@%h -E -l "${ETHHOOK_LOG_LEVEL:-INFO}" "$@"
