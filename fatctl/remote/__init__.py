"""Everything that reaches a box: targets, the paramiko runner, fan-out, command builders.

Entry points for services (rollouts, provisioning, access):
- `target.Target`: host, port, user, pinned host key lines, key file / agent, optional jump.
  `fatctl.services.common.targets.select_targets` / `agent_target` build them from the database.
- `runner.Pool`: connections reused for one command; `pool.get(t).run(cmd, stdin=..., timeout=...)`
  returns a `runner.Result` (exit code, stdout, stderr, duration); `Result.check(what)` raises.
- `fanout.fan_out(targets, cmd, parallel=N, pool=..., on_line=prefix_printer())`: per-host
  results in input order; unreachable hosts become results with `error`, never exceptions.
- `commands.*`: pure builders (files.atomic_write, files.symlink_switch, services.systemctl,
  services.fat_health, authorized_keys.rewrite_authorized_keys, shell.sudo).
"""
