"""kombu's Redis transport, whose channels fail with a connection error once their connection is
closed, as they do on AMQP: a worker then reconnects instead of exiting."""

from __future__ import annotations

from typing import Any

from kombu.transport import redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> Any:
        """The connection parameters; a connection error when the connection is closed.

        When a worker loses Redis, Celery closes the broker connection, and kombu detaches the
        transport from its channels (`client` None). A channel still has to reach Redis after
        that: the one interrupted in its BRPOP restores its unacknowledged messages when Celery
        closes it a second time, and a task that was running acknowledges its message when it
        ends, after the worker reconnected. Both ask the detached transport for its host; an
        AttributeError there, which neither Celery nor kombu expect, is an "Unrecoverable error"
        and the worker stops consuming for good. A connection error is what they expect: the
        cleanup ignores it, the acknowledgement is logged as failed, and the message stays in
        Redis (its work is leased in the database either way).
        """
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection of this channel was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(redis.Transport):
    Channel = Channel
