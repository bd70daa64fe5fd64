"""Imported by the query workers' forkserver only, as its first preload (``workers.py``):
it ties the forkserver's life to the server's. The workers die with the forkserver, their
parent, so that neither outlives the server, whatever state a worker is in.

Importing this module anywhere else is a mistake: it would tie that process to its parent.
"""

from __future__ import annotations

import os

from ..runtime import FORKSERVER_PARENT_ENV, die_with_parent

die_with_parent(int(os.environ[FORKSERVER_PARENT_ENV]))
PID = os.getpid()  # the workers' parent, which each checks it still has
