"""This node's identity: ids kept in the data directory, so they survive restarts."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from .settings import Settings
from .store.db import Database
from .store.documents import new_uuid

ES_VERSION = "9.2.0"
LUCENE_VERSION = "10.3.1"
BUILD_DATE = "2025-10-21T10:06:21.288851013Z"


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    cluster_name: str
    cluster_uuid: str
    host: str
    ip: str
    transport_address: str


async def load_node(db: Database, settings: Settings) -> Node:
    """Read the node and cluster ids, creating them on the first start (in the flood stage too)."""
    async with db.write(grows=False) as conn:
        for key in ("node_id", "cluster_uuid"):
            await conn.execute("INSERT OR IGNORE INTO node_info (key, value) VALUES (?, ?)", (key, new_uuid()))
        async with conn.execute("SELECT key, value FROM node_info") as cur:
            info = dict(await cur.fetchall())  # type: ignore[arg-type]
    host = settings.host if settings.host not in ("0.0.0.0", "::") else socket.gethostname()
    ip = "127.0.0.1" if settings.host in ("localhost", "0.0.0.0", "::") else settings.host
    return Node(id=info["node_id"], name=settings.node_name, cluster_name=settings.cluster_name,
                cluster_uuid=info["cluster_uuid"], host=host, ip=ip, transport_address=f"{ip}:9300")
