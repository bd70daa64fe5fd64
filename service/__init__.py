"""Esquire: a local asynchronous query service over SQLite that speaks Elasticsearch's APIs."""

__version__ = "0.1.0"  # the one place of the version: pyproject.toml reads it
