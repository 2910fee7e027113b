"""The ground floor: what every app builds on and that imports no app (docs/architecture.md).

Errors and their renderings, ids, money amounts, token usage, the request outcome, the
hot path's Redis connection and its health, database calls from async code, settings
parsing. Enforced by the import-linter contracts in pyproject.toml.
"""
