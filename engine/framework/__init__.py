"""The framework: CLI, configuration, message schema and transport, the stage kit, the supervisor."""
