"""Garbage collection decisions, pure.

An object's fate depends on its owners, looked up by uid:
- an owner that exists and is not being deleted keeps the dependent;
- an owner that is gone (absent, or the name now belongs to an object with another uid) is a
  dangling reference: if every owner is gone the dependent is deleted, otherwise only the
  dangling references are removed;
- an owner being deleted with the `foregroundDeletion` finalizer deletes its dependents first
  and drops the finalizer once none is left (the API server then removes the owner);
- an owner being deleted with the `orphan` finalizer strips its reference from every dependent
  and then drops the finalizer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from api.meta import ObjectMeta

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


class Owner(Enum):
    PRESENT = "present"
    ABSENT = "absent"
    DELETING = "deleting"  # present with a deletionTimestamp: neither keep nor drop yet


@dataclass
class DependentAction:
    delete: bool = False
    remove_refs: list[str] = field(default_factory=list)  # owner uids to drop from ownerReferences


def decide_dependent(meta: ObjectMeta, owners: Mapping[str, Owner]) -> DependentAction:
    """What to do with an object given the state of each of its owners (uid -> state)."""
    refs = meta.owner_references or []
    if not refs or meta.deletion_timestamp is not None:
        return DependentAction()
    absent = [r.uid for r in refs if owners.get(r.uid, Owner.ABSENT) is Owner.ABSENT]
    if len(absent) == len(refs):
        return DependentAction(delete=True)
    return DependentAction(remove_refs=absent)


@dataclass
class OwnerAction:
    orphan: bool = False  # strip our reference from every dependent, then drop ORPHAN
    delete_dependents: bool = False  # delete every dependent not already being deleted
    drop_finalizer: str | None = None  # the finalizer to remove now


def decide_owner(meta: ObjectMeta, *, dependents: int) -> OwnerAction:
    """What a deleting owner still needs, given how many dependents still reference it."""
    if meta.deletion_timestamp is None:
        return OwnerAction()
    finalizers = meta.finalizers or []
    if ORPHAN in finalizers:
        return OwnerAction(orphan=dependents > 0, drop_finalizer=ORPHAN if dependents == 0 else None)
    if FOREGROUND in finalizers:
        return OwnerAction(delete_dependents=dependents > 0,
                           drop_finalizer=FOREGROUND if dependents == 0 else None)
    return OwnerAction()
