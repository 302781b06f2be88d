"""The engine: CLI, configuration, sources, message schema, transport and supervisor."""
