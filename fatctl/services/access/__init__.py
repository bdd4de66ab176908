"""Who may log in to the boxes, made true on the boxes.

- `authorized_keys.push_customer_keys` / `push_authorized_keys`: the managed block rewritten.
- `rotation`: operator key rotation across the fleet, resumable.
- `fleet_key_ids`: the fleet SSH keys' Hetzner ids, kept between processes.
"""
