"""Optimistic concurrency control, as Elasticsearch's engine applies it to every write.

One place for the rules: which request parameters are valid together (``problems``, the
``validate()`` of ES's index, delete and update requests), and whether a write may go ahead
and which ``_version`` it stores (``Versioning.resolve``, ES's ``planIndexingAsPrimary`` and
``planDeletionAsPrimary``). Every path (``_doc``, ``_create``, ``_update``, ``DELETE`` and each
``_bulk`` action) goes through both.

A delete leaves a tombstone, as in ES's live version map: for ``index.gc_deletes`` (60 s) the
deleted id keeps its version, so an external version older than the delete is refused and an
internal re-create continues from the deleted version. Tombstones live in memory, as ES's
version map does, so a restart forgets them.
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from ..errors import BadRequest, Conflict

# Elasticsearch's sentinels (Versions, SequenceNumbers): requests carry them when unset.
MATCH_ANY = -3
MATCH_DELETED = -4
NOT_FOUND = -1
UNASSIGNED_SEQ_NO = -2
UNASSIGNED_PRIMARY_TERM = 0
# One node, one primary that is never replaced: its term never changes.
PRIMARY_TERM = 1
GC_DELETES_S = 60.0


class VersionType(enum.Enum):
    INTERNAL = "internal"
    EXTERNAL = "external"
    EXTERNAL_GTE = "external_gte"

    @classmethod
    def parse(cls, text: str) -> VersionType:
        """ES's ``VersionType.fromString``: ``external_gt`` is ``external``; the rest is an error."""
        if text == "external_gt":
            return cls.EXTERNAL
        for member in cls:
            if member.value == text:
                return member
        raise BadRequest(f"No version type match [{text}]")

    def accepts(self, version: int) -> bool:
        """``validateVersionForWrites``."""
        if self is VersionType.INTERNAL:
            return version > 0 or version in (MATCH_ANY, MATCH_DELETED)
        return version >= 0

    def conflicts(self, current: int, expected: int, deleted: bool) -> bool:
        """``isVersionConflictForWrites``: ``current`` is NOT_FOUND for an unknown id."""
        if self is VersionType.INTERNAL:
            if expected == MATCH_ANY:
                return False
            if expected == MATCH_DELETED:
                return not deleted
            return current != expected
        if current == NOT_FOUND:
            return False
        if expected == MATCH_ANY:
            return True
        return current >= expected if self is VersionType.EXTERNAL else current > expected

    def explain(self, current: int, expected: int) -> str:
        """``explainConflictForWrites``, the text after ``[id]: version conflict, ``."""
        if self is VersionType.EXTERNAL:
            return f"current version [{current}] is higher or equal to the one provided [{expected}]"
        if self is VersionType.EXTERNAL_GTE:
            return f"current version [{current}] is higher than the one provided [{expected}]"
        if expected == MATCH_DELETED:
            return f"document already exists (current version [{current}])"
        if current == NOT_FOUND:
            return f"document does not exist (expected version [{expected}])"
        return f"current version [{current}] is different than the one provided [{expected}]"

    def next_version(self, current: int, expected: int) -> int:
        """``updateVersion``: internal counts up from the current one; external stores the given one."""
        if self is VersionType.INTERNAL:
            return 1 if current == NOT_FOUND else current + 1
        return expected

    def accepts_for_reads(self, version: int) -> bool:
        """``validateVersionForReads``."""
        if self is VersionType.INTERNAL:
            return version > 0 or version == MATCH_ANY
        return version >= 0 or version == MATCH_ANY

    def read_conflict(self, current: int, expected: int) -> str | None:
        """A GET with ``version``: why the stored version is not the one given, or None."""
        if expected == MATCH_ANY or current == expected:
            return None
        return f"current version [{current}] is different than the one provided [{expected}]"


def check_seq_no(value: int) -> int:
    """An ``if_seq_no`` as ES's request setters take it (-2 is ES's "unset")."""
    if value < 0 and value != UNASSIGNED_SEQ_NO:
        raise BadRequest(f"sequence numbers must be non negative. got [{value}].")
    return value


def check_primary_term(value: int) -> int:
    """An ``if_primary_term`` as ES's request setters take it."""
    if value < 0:
        raise BadRequest(f"primary term must be non negative. got [{value}]")
    return value


@dataclass(frozen=True, slots=True)
class Current:
    """What the engine knows of an id: the live document's version and seq_no, or a recent delete."""

    version: int
    seq_no: int
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Versioning:
    """The concurrency parameters of one write request (``version``, ``version_type``,
    ``if_seq_no``, ``if_primary_term``), unset ones holding ES's sentinels."""

    version: int = MATCH_ANY
    version_type: VersionType = VersionType.INTERNAL
    if_seq_no: int = UNASSIGNED_SEQ_NO
    if_primary_term: int = UNASSIGNED_PRIMARY_TERM

    def cas_problems(self, version: int) -> list[str]:
        """ES's ``validateSeqNoBasedCASParams`` (``version`` as the request resolves it)."""
        out = []
        vt = self.version_type
        if not vt.accepts(version):
            out.append(f"illegal version value [{version}] for version type [{vt.name}]")
        if vt is VersionType.INTERNAL and version not in (MATCH_ANY, MATCH_DELETED):
            out.append("internal versioning can not be used for optimistic concurrency control. "
                       "Please use `if_seq_no` and `if_primary_term` instead")
        if self.if_seq_no != UNASSIGNED_SEQ_NO and (vt is not VersionType.INTERNAL or version != MATCH_ANY):
            out.append("compare and write operations can not use versioning")
        if self.if_primary_term == UNASSIGNED_PRIMARY_TERM and self.if_seq_no != UNASSIGNED_SEQ_NO:
            out.append("ifSeqNo is set, but primary term is [0]")
        if self.if_primary_term != UNASSIGNED_PRIMARY_TERM and self.if_seq_no == UNASSIGNED_SEQ_NO:
            out.append(f"ifSeqNo is unassigned, but primary term is [{self.if_primary_term}]")
        return out

    def checked(self) -> Versioning:
        """Itself, once its sequence number and term pass ES's request setters."""
        check_seq_no(self.if_seq_no)
        check_primary_term(self.if_primary_term)
        return self

    def resolve(self, doc_id: str, current: Current | None, *, create: bool = False) -> int:
        """The ``_version`` a write of ``doc_id`` stores, or ``Conflict`` (409) if it may not run.

        Checked in ES's order: ``if_seq_no`` against a missing or deleted document, then
        against the current seq_no and term, then the version type's rule. ``create`` is
        ``op_type=create``: without an explicit version it expects no live document.
        """
        deleted = current is None or current.deleted
        if self.if_seq_no != UNASSIGNED_SEQ_NO:
            required = f"required seqNo [{self.if_seq_no}], primary term [{self.if_primary_term}]."
            if current is None or current.deleted:
                raise conflict(doc_id, f"{required} but no document was found")
            if current.seq_no != self.if_seq_no or self.if_primary_term != PRIMARY_TERM:
                raise conflict(doc_id, f"{required} current document has seqNo [{current.seq_no}] "
                                        f"and primary term [{PRIMARY_TERM}]")
        version = NOT_FOUND if current is None else current.version
        expected = MATCH_DELETED if create and self.version == MATCH_ANY else self.version
        vt = self.version_type
        if vt.conflicts(version, expected, deleted):
            raise conflict(doc_id, vt.explain(version, expected))
        return vt.next_version(version, expected)


NO_VERSIONING = Versioning()


def conflict(doc_id: str, explanation: str, **metadata: str) -> Conflict:
    """``version_conflict_engine_exception`` (409) for ``doc_id``."""
    return Conflict(f"[{doc_id}]: version conflict, {explanation}", **metadata)


def problems(action: str, doc_id: str | None, versioning: Versioning, *, retry_on_conflict: int = 0,
             doc_as_upsert: bool = False, upsert: bool = False) -> list[str]:
    """The versioning problems ES's ``validate()`` finds in one index, create, delete or
    update request, in its order (an empty list when there are none)."""
    v = versioning
    if v == NO_VERSIONING:  # the common case, and nothing below can object to it
        return [] if doc_id or action in ("index", "create") else ["id is missing"]
    if action in ("index", "create"):
        version = v.version
        if action == "create":
            # IndexRequest.validate stops at the first of these.
            if v.version_type is not VersionType.INTERNAL:
                return ["create operations only support internal versioning. use index instead"]
            if version == MATCH_ANY:
                version = MATCH_DELETED
            if version != MATCH_DELETED:
                return ["create operations do not support explicit versions. use index instead"]
            if v.if_seq_no != UNASSIGNED_SEQ_NO or v.if_primary_term != UNASSIGNED_PRIMARY_TERM:
                return ["create operations do not support compare and set. use index instead"]
        out = []
        if doc_id is None and (v.version_type is not VersionType.INTERNAL
                               or version not in (MATCH_DELETED, MATCH_ANY)):
            out.append("an id must be provided if version type or value are set")
        return out + v.cas_problems(version)
    out = [] if doc_id else ["id is missing"]
    out += v.cas_problems(v.version)
    if action == "update" and v.if_seq_no != UNASSIGNED_SEQ_NO:
        if retry_on_conflict > 0:
            out.append("compare and write operations can not be retried")
        if doc_as_upsert:
            out.append("compare and write operations can not be used with upsert")
        if upsert:
            out.append("upsert requests don't support `if_seq_no` and `if_primary_term`")
    return out


class Tombstones:
    """Recent deletes by (index uuid, id), each remembered for ``GC_DELETES_S``.

    Bounded like everything a client can grow: past ``limit`` entries the oldest delete is
    forgotten early, which only makes a later write behave as if its GC had run.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, limit: int = 100_000) -> None:
        self.clock = clock
        self.limit = limit
        self._deleted: OrderedDict[tuple[str, str], tuple[Current, float]] = OrderedDict()

    def get(self, index_uuid: str, doc_id: str) -> Current | None:
        """The tombstone of a delete of ``doc_id`` within the last ``GC_DELETES_S``, if any."""
        if not self._deleted:
            return None
        entry = self._deleted.get((index_uuid, doc_id))
        if entry is None or self.clock() - entry[1] > GC_DELETES_S:
            return None
        return entry[0]

    def record(self, changes: dict[tuple[str, str], Current]) -> None:
        """Apply a committed transaction's last state per id: deletes become tombstones,
        anything written over one clears it."""
        now = self.clock()
        deleted = self._deleted
        for key, state in changes.items():
            deleted.pop(key, None)  # so the newest delete moves to the end
            if state.deleted:
                deleted[key] = (state, now)
        while deleted:
            key, (_, at) = next(iter(deleted.items()))
            if now - at <= GC_DELETES_S and len(deleted) <= self.limit:
                break
            del deleted[key]
