"""Agent records and what belongs to them before any box exists.

- `records.create_agent` / `delete_agent` (`NewAgent`): the database side of an agent.
- `material`: per-agent SSH host keys and gateway token, generated and sealed.
- `keys.add_key` / `list_keys` / `revoke_key`: operator and customer SSH public keys.
"""
