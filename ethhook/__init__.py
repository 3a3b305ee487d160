"""EthHook: on-chain EVM events delivered as signed webhooks."""

__version__ = "0.1.0"
