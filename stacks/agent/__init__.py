"""The per-agent Pulumi stack: the program (a function of an AgentSpec), options, entry point."""
