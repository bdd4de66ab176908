"""An agent's box from nothing to `ready`, and back to nothing.

- `flow.provision(...)` (`Options`, `Flow`): the recorded, resumable provisioning steps.
- `cloud`: the control plane's steps (material, render, infra apply).
- `dns`: the box's primary IPs and its A/AAAA records, before the server exists.
- `box`: the steps on the box over pinned SSH (reach, cloud-init, secrets, health gate).
- `destroy.destroy(...)`: DNS, server and stack removed; IPs and data kept unless asked.
- `preflight`: what provision and destroy would refuse, asked before either writes anything.
"""
