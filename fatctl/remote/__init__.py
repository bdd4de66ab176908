"""Everything that reaches a box: targets, the paramiko runner, fan-out, command builders."""
