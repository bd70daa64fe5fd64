"""SME background tasks: ``POST /_sme/async_requests/file_download/{id}`` (spec
sme-background-tasks §4.7), the stored result of a finished task as a JSON, CSV or XLSX file.

The body is read and checked here (``DownloadRequest``); the rows are streamed from the task's
stored result into the file by ``exports`` (the writers every API shares), and the file is
sent as an attachment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Sequence

from aiohttp import web

from .. import keys
from ..core.queries import Batches
from ..errors import BadRequest
from .exports import FILE_TYPES, Export, FileResponse, clean_name, write_export

DEFAULT_RESULTS_SIZE = 10_000


@dataclass(frozen=True)
class DownloadRequest:
    """What to export: ``file_name`` (a clean base name), ``file_type``, ``compress_results``,
    and how many rows: ``limit`` None for ``download_all_results``, else
    ``download_results_size``."""

    file_name: str
    file_type: str
    compress: bool
    limit: int | None

    @classmethod
    def parse(cls, body: dict[str, Any], task_id: str) -> DownloadRequest:
        """The request body, with the defaults of §4.7; a bad value is a 400
        ``illegal_argument_exception``. Unknown keys are ignored, as for the create request."""
        file_type = body.get("file_type", "json")
        if not isinstance(file_type, str) or file_type.lower() not in FILE_TYPES:
            raise BadRequest(f"[file_type] must be one of [json, csv, xlsx], got [{_shown(file_type)}]")
        file_type = file_type.lower()
        raw_name = body.get("file_name")
        if raw_name is not None and not isinstance(raw_name, str):
            raise BadRequest(f"[file_name] must be a string, got [{_shown(raw_name)}]")
        everything = _flag(body, "download_all_results")
        size = body.get("download_results_size", DEFAULT_RESULTS_SIZE)
        if isinstance(size, str) and size.strip().isdigit():
            size = int(size)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise BadRequest(f"[download_results_size] must be an integer of at least 1, got [{_shown(size)}]")
        return cls(clean_name(raw_name, task_id, file_type), file_type, _flag(body, "compress_results"),
                   None if everything else size)


def _flag(body: dict[str, Any], name: str) -> bool:
    """A boolean body field, default false; ``"true"``/``"false"`` strings accepted, as the
    create request accepts them for ``calculateStats``."""
    value = body.get(name, False)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise BadRequest(f"[{name}] must be a boolean, got [{_shown(value)}]")
    return value


def _shown(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


async def _events(rows: Batches) -> AsyncIterator[Sequence[dict[str, Any]]]:
    """The stored rows' events: a stored row is ``[event]``."""
    async for batch in rows():
        yield [row[0] for row in batch]


async def export_task(request: web.Request, download: DownloadRequest, rows: Batches,
                      fields: Sequence[str]) -> Export:
    """Write a finished task's stored rows as ``download`` asks, into a temporary file beside
    the database (``exports.write_export``)."""
    return await write_export(_events(rows), fields, file_type=download.file_type, name=download.file_name,
                              directory=request.app[keys.SETTINGS].data_dir, limit=download.limit,
                              compress=download.compress)


def file_response(export: Export) -> FileResponse:
    """The export as the response: sent from its file, then removed."""
    return FileResponse(export)
