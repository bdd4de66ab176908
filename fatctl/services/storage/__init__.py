"""The agent's R2 data and the credentials that reach it.

- `r2_rotation.rotate_r2(...)`: refresh boxes' R2 temporary credentials before they expire.
- `data`: the customer's data, deleted only by `destroy --purge-data`.
"""
