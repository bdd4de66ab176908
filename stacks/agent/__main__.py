"""Entry point for a hand-run `pulumi preview`/`pulumi up` in this directory: the same program
the Automation API driver runs, with the AgentSpec read from `agent:*` stack config."""

import pulumi

from stacks.agent.program import agent_program
from stacks.agent.stack_config import spec_from_config

_config = pulumi.Config("agent")
agent_program(
    spec_from_config(_config.get),
    user_data=_config.get("userData") or "",
    provider_endpoint=pulumi.Config("hcloud").get("endpoint"),
)
