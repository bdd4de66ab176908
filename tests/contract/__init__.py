"""Contract suites: the sandbox emulators checked against the providers' own API documents."""
