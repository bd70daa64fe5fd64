"""The one helper that puts an identifier into SQL text."""


def quote(identifier: str) -> str:
    """Quote an SQLite identifier (table or column name); embedded quotes are doubled."""
    return '"' + identifier.replace('"', '""') + '"'
