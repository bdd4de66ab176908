"""Shared machinery of the sandbox's API emulators: SQLite document store, token-bucket rate
limit, fault injection and call counters (an outermost ASGI middleware), the uvicorn runner."""
