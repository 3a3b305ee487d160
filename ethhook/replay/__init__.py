"""Replays: a block range re-read from the chain and delivered again, as a resumable background
job that commits one chunk at a time (a service above the listener's reading and the matcher's
delivery rows). `jobs`: create, read and cancel them; `chunks`: the worker's side, which loads
no view (no pydantic model in a worker)."""
