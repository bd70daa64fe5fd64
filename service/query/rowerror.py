"""The per-row evaluation failure, in a module of its own so that the neutral helpers
(span arithmetic) can raise it without importing the expression compiler."""

from __future__ import annotations


class EvalError(Exception):
    """A per-row failure: the value becomes null and a warning is recorded."""

    def __init__(self, java_message: str) -> None:
        super().__init__(java_message)
        self.java_message = java_message
