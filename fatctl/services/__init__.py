"""The flows behind fatctl's commands, one feature package each.

`common` holds what every flow shares and imports no feature. A feature may import `common`
and, without cycles, another feature's entry points (`tests/unit/test_architecture.py` keeps
both rules). The CLI and the service call these packages; they call the edges (`infra`, `dns`,
`remote`, `state`, `cloud_init`) and never the other way round. See `docs/architecture.md`.
"""
