"""Run configuration: the schema, presets and overrides."""
