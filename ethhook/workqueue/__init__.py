"""The work queue: rows in PostgreSQL leased to the Celery messages that carry them.

A row (an unmatched event, a delivery) is worked on only by the holder of its lease. A message
carries the token it was leased to: a duplicate message (broker redelivery, a second beat) finds
the lease taken and does nothing, and a lost message (Redis flushed) lets the lease expire so the
due scan dispatches the row again. A delivery is sent under a worker's claim, which is exclusive;
a message's lease is not: a message naming a due delivery may claim it from another message, so a
message that outwaited its lease in a long queue still does its work. PostgreSQL is the truth; a
message is only a trigger.
"""

from ethhook.workqueue.backlog import (
    DISCARDED_REASON,
    DisableTrigger,
    disable_endpoints,
    discard_backlog,
    hold_backlog,
    resume_backlog,
    settle_disabled,
)
from ethhook.workqueue.chainorder import (
    held_chains,
    held_row,
    in_chain_order,
    release_held,
)
from ethhook.workqueue.enqueue import (
    DELIVER_TASK,
    MATCH_TASK,
    OPS_TASK,
    REPLAY_TASK,
    ReplayDispatch,
    enqueue_groups,
    enqueue_match_groups,
    enqueue_ops,
    enqueue_replays,
    range_of,
    waiting_messages,
)
from ethhook.workqueue.events import (
    MatchGroup,
    claim_unmatched,
    due_events,
    lease_events,
    store_events,
    store_replayed,
)
from ethhook.workqueue.lease import (
    DispatchGroup,
    TimeRange,
    chunk_groups,
    claim,
    defer,
    due_deliveries,
    due_now,
    held_by_message,
    in_time_range,
    lease_available,
    lease_free,
    new_claim_token,
    new_token,
    release_leases,
    time_range,
)
from ethhook.workqueue.ops import (
    OpsDispatch,
    claim_ops_statement,
    emit_for_chain,
    emit_for_endpoints,
    emit_ops,
    lease_due_ops,
)
from ethhook.workqueue.ordered import (
    ORDERED_MODES,
    Head,
    claim_ordered,
    due_heads,
    head_of,
    paused_by,
)
from ethhook.workqueue.orphans import orphan_blocks
from ethhook.workqueue.rows import NewLeases, delivery_row, insert_deliveries
from ethhook.workqueue.sequence import number_deliveries

__all__ = [
    "held_chains",
    "held_row",
    "in_chain_order",
    "release_held",
    "ORDERED_MODES",
    "Head",
    "claim_ordered",
    "due_heads",
    "head_of",
    "paused_by",
    "DISCARDED_REASON",
    "DisableTrigger",
    "disable_endpoints",
    "OPS_TASK",
    "OpsDispatch",
    "claim_ops_statement",
    "discard_backlog",
    "emit_for_chain",
    "emit_for_endpoints",
    "emit_ops",
    "enqueue_ops",
    "hold_backlog",
    "lease_due_ops",
    "resume_backlog",
    "settle_disabled",
    "DELIVER_TASK",
    "MATCH_TASK",
    "REPLAY_TASK",
    "ReplayDispatch",
    "enqueue_replays",
    "DispatchGroup",
    "MatchGroup",
    "TimeRange",
    "claim_unmatched",
    "due_events",
    "due_now",
    "enqueue_match_groups",
    "lease_events",
    "store_events",
    "store_replayed",
    "NewLeases",
    "chunk_groups",
    "claim",
    "defer",
    "delivery_row",
    "due_deliveries",
    "enqueue_groups",
    "insert_deliveries",
    "number_deliveries",
    "lease_available",
    "held_by_message",
    "in_time_range",
    "lease_free",
    "new_claim_token",
    "new_token",
    "orphan_blocks",
    "range_of",
    "release_leases",
    "time_range",
    "waiting_messages",
]
