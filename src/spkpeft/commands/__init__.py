"""CLI sub-commands. Each module here defines ``register(subparsers)`` which adds its parsers and sets
``func`` (called with the parsed args; returns an exit code). ``spkpeft.cli`` discovers them all."""
