"""The deliver stage's database side: claim and load work, record attempts, add up rollups."""

from ethhook.deliver.store.attempts import (
    EndpointView,
    Result,
    Work,
    disable_endpoint,
    load_endpoint,
    load_work,
    record,
)
from ethhook.deliver.store.claimload import ClaimedWork, claim_and_load

__all__ = [
    "ClaimedWork",
    "EndpointView",
    "Result",
    "Work",
    "claim_and_load",
    "disable_endpoint",
    "load_endpoint",
    "load_work",
    "record",
]
