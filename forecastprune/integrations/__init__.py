"""Integrations with training frameworks (optional extras; import the submodule you need)."""
