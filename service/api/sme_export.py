"""SME background tasks: ``POST /_sme/async_requests/file_download/{id}`` (spec
sme-background-tasks §4.7), the stored result of a finished task as a JSON, CSV or XLSX file.

The body is read and checked here (``DownloadRequest``); the rows are read from disk a batch
at a time into the file by ``exports`` (the writers every API shares, on their thread), the
export is noted in the task's log, and the file is sent as an attachment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from aiohttp import web

from .. import keys
from ..core.background import TERMINAL, BackgroundTasks, Line, NotFinished, TaskView
from ..core.searches import SearchNotFound
from ..errors import BadRequest
from ..query.sml.request import body_flag, shown
from .exports import FILE_TYPES, Export, FileResponse, clean_name, write_export
from .middleware import accepts
from .sme import owner, task_id_of
from .wire import read_json

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
            raise BadRequest(f"[file_type] must be one of [json, csv, xlsx], got [{shown(file_type)}]")
        file_type = file_type.lower()
        raw_name = body.get("file_name")
        if raw_name is not None and not isinstance(raw_name, str):
            raise BadRequest(f"[file_name] must be a string, got [{shown(raw_name)}]")
        everything = body_flag(body, "download_all_results")
        size = body.get("download_results_size", DEFAULT_RESULTS_SIZE)
        if isinstance(size, str) and size.strip().isdecimal():
            size = int(size)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise BadRequest(f"[download_results_size] must be an integer of at least 1, got [{shown(size)}]")
        return cls(clean_name(raw_name, task_id, file_type), file_type, body_flag(body, "compress_results"),
                   None if everything else size)


def _events(tasks: BackgroundTasks, task_id: str, count: int) -> Iterator[list[bytes]]:
    """The task's first ``count`` stored events as their JSON text, batch by batch from disk, on
    the export's thread. A stored row is ``[event]``, so its text less the brackets is the
    event's. Fewer than ``count`` means the task was deleted (or reaped) mid-read: it is
    answered as if the download came after."""
    seen = 0
    for batch in tasks.stored_rows(task_id, count):
        seen += len(batch)
        yield [row[1:-1] for row in batch]
    if seen < count:
        raise SearchNotFound(task_id)


def _log_lines(download: DownloadRequest, export: Export) -> list[Line]:
    """What the task log says of an export: its type, rows and bytes, and what Excel's limits
    took out of it."""
    name = export.download_name
    lines: list[Line] = [("INFO", f"export {name}: {download.file_type}{' (zip)' if download.compress else ''}, "
                                  f"{export.rows} rows, {export.bytes} bytes", None)]
    if export.dropped_rows:
        lines.append(("WARN", f"export {name}: {export.dropped_rows} rows past Excel's last row dropped", None))
    if export.dropped_fields:
        lines.append(("WARN", f"export {name}: {export.dropped_fields} fields past Excel's last column dropped",
                      None))
    if export.cut_cells:
        lines.append(("WARN", f"export {name}: {export.cut_cells} cells cut at Excel's 32767 characters", None))
    return lines


async def _finished(tasks: BackgroundTasks, task_id: str, user: str) -> TaskView:
    view = await tasks.get(task_id, user)
    if view.state not in TERMINAL:
        raise NotFinished(f"background task [{task_id}] has not finished yet: {view.state.value}; "
                          "only a finished task can be downloaded")
    return view


@accepts()
async def file_download(request: web.Request) -> web.StreamResponse:
    task_id = task_id_of(request)
    download = DownloadRequest.parse(await read_json(request, "file_download"), task_id)
    tasks = request.app[keys.BACKGROUND]
    view = await _finished(tasks, task_id, owner(request))
    fields = (await tasks.frame(view)).get("fields", [])
    total = view.record.row_count
    count = total if download.limit is None else min(download.limit, total)
    export = await write_export(_events(tasks, task_id, count), fields, file_type=download.file_type,
                                name=download.file_name, directory=request.app[keys.SETTINGS].data_dir,
                                compress=download.compress)
    try:
        await tasks.log(task_id, _log_lines(download, export))
    except BaseException:
        export.discard()
        raise
    return FileResponse(export)
