"""The /v1 resources, one module each: endpoints, deliveries, replays, stats, applications."""
