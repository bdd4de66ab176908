"""`fatctl serve`: the control plane as a service, on DBOS Transact (durable workflows).

Entry points: `runtime` (DBOS configured on fatctl's own database, launched and shut down in
one process: `running(Runtime(...))`), `workflows` (provision and destroy as workflows whose
one step is the existing recorded flow, on the per-agent `agents` queue), `tokens` (API tokens,
stored as hashes), `idempotency` (Idempotency-Key claims), `api` (the FastAPI app under `/v1`).
"""
