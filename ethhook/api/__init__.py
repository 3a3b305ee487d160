"""The HTTP API (`ethhook api`): a thin FastAPI layer over the service functions the CLI calls.

* `app`: `create_app(settings)`, the routes and the middleware around them.
* `routes/`: one module per /v1 resource; each route calls one service function.
* `auth`, `guard`: Bearer keys → Principal; body limit, rate limit, authentication.
* `idempotency`: `Idempotency-Key` on POST, kept in Redis for 24 hours.
* `problems`: every error as application/problem+json (RFC 9457).
* `metrics`, `health`: request metrics by route template, GET /metrics and GET /health.
"""
