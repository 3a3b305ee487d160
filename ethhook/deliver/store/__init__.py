"""The deliver stage's database side: claim and load work, record attempts, add up rollups."""

from ethhook.deliver.store.attempts import Result, disable_endpoint, record
from ethhook.deliver.store.claimload import ClaimedWork, claim_and_load, claim_ordered_and_load
from ethhook.deliver.store.load import EndpointView, Work, load_endpoint, load_work

__all__ = [
    "ClaimedWork",
    "EndpointView",
    "Result",
    "Work",
    "claim_and_load",
    "claim_ordered_and_load",
    "disable_endpoint",
    "load_endpoint",
    "load_work",
    "record",
]
