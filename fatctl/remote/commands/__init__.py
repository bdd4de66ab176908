"""Pure builders of remote shell commands: each returns a string (or argv) and does no I/O.

Only `fatctl.remote.runner` executes what these return. All quoting goes through
`shlex.quote`/`shlex.join`; secret content is never part of a command line, it is fed on stdin.
"""
