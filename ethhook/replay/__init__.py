"""Replays: a block range re-read from the chain and delivered again, as a resumable background
job that commits one chunk at a time (a service above the listener's reading and the matcher's
delivery rows)."""

from ethhook.replay.jobs import Replay, cancel_replay, create_replay, get_replay

__all__ = ["Replay", "cancel_replay", "create_replay", "get_replay"]
