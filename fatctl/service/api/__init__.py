"""The HTTP API of `fatctl serve` (FastAPI, under `/v1`).

Entry points: `app.create_app(runtime)` (the app; its lifespan runs the DBOS runtime), `auth`
(bearer tokens and scopes), `routes` (the agents' paths), `openapi` (writes docs/openapi.json).
"""
