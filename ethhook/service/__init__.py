"""The operations users ask for (endpoints, deliveries, applications, statistics), shared by every entry point.

Each function takes a session and an explicit scope, validates its input, and returns plain
dataclasses: no printing, no argument parsing. The CLI and the HTTP API are thin layers over it.
"""
