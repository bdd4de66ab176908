"""Monthly Hetzner cost per agent beside its plan's price.

- `report.fleet_cost(...)`, `cost_rows`, `cost_document`: the fleet's costs, for people and JSON.
- `prices`: the arithmetic, pure; `price_cache`: Hetzner's price list cached on disk.
"""
