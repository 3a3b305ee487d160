"""What an endpoint's guarantees make of one event: which kinds of delivery, and when a confirmed
one is released (its confirmations against the listener's cursor, or a chain tag's block)."""

from __future__ import annotations

from dataclasses import dataclass

from ethhook.db.models import EventKind, Finality

# How the matcher's query carries an endpoint's finality, lifecycle and whether it is ordered in
# one column (one probe of the endpoint's row per filter row, as for its confirmations):
# `finalized`, `latest+lifecycle`, `safe+lifecycle+ordered`.
LIFECYCLE_SUFFIX = "+lifecycle"
ORDERED_SUFFIX = "+ordered"


def parse_mode(mode: str | None) -> tuple[str, bool, bool]:
    """(finality, lifecycle, ordered) from the query's mode column (None: an endpoint made
    before)."""
    if not mode:
        return Finality.LATEST, False, False
    ordered = mode.endswith(ORDERED_SUFFIX)
    mode = mode.removesuffix(ORDERED_SUFFIX)
    lifecycle = mode.endswith(LIFECYCLE_SUFFIX)
    finality = mode.removesuffix(LIFECYCLE_SUFFIX)
    return (finality if finality in Finality.ALL else Finality.LATEST), lifecycle, ordered


def delivery_kinds(confirmations: int, finality: str, lifecycle: bool) -> tuple[str, ...]:
    """The deliveries one event makes for an endpoint, in the order they are sent: a lifecycle
    endpoint gets `event.instant` at once and `event.confirmed` at its finality; any other gets
    one of them (instant only for `latest` with 0 confirmations)."""
    if lifecycle:
        return (EventKind.INSTANT, EventKind.CONFIRMED)
    if finality == Finality.LATEST and confirmations == 0:
        return (EventKind.INSTANT,)
    return (EventKind.CONFIRMED,)


@dataclass(frozen=True)
class Release:
    """When a confirmed delivery may go: once `tag`'s block (None: the listener's cursor) reaches
    `block`."""

    block: int
    tag: str | None


def release_of(block_number: int, confirmations: int, finality: str) -> Release:
    if finality in Finality.TAGS:
        return Release(block_number, finality)
    return Release(block_number + confirmations, None)


@dataclass(frozen=True)
class Heights:
    """A chain's blocks that release confirmed deliveries: the listener's cursor (`head`, the
    highest block checked by parent hash) and the node's tags, each counted only up to the
    cursor (a tag above it names blocks the listener has not verified yet)."""

    head: int | None
    safe: int | None = None
    finalized: int | None = None

    def reached(self, release: Release) -> bool:
        height = self.head
        if release.tag is not None:
            tag = self.safe if release.tag == Finality.SAFE else self.finalized
            height = None if tag is None or self.head is None else min(tag, self.head)
        return height is not None and release.block <= height
