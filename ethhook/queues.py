"""The Celery queues, named once."""

from enum import StrEnum


class Queue(StrEnum):
    MATCH = "match"
    DELIVER = "deliver"
    MAINTENANCE = "maintenance"
