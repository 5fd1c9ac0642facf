"""Naming a job by a prefix of its id, as `fraudctl stop` allows (ids are 32 hex digits)."""

from __future__ import annotations

from collections.abc import Iterable


class JobIdError(ValueError):
    """The prefix names no job, or more than one."""


def resolve_job_id(prefix: str, job_ids: Iterable[str]) -> str:
    """The one id in `job_ids` that starts with `prefix` (a whole id is its own prefix)."""
    if not prefix:
        raise JobIdError("give a job id or a prefix of one (`fraudctl jobs` lists them)")
    matches = list(dict.fromkeys(j for j in job_ids if j.startswith(prefix)))
    if not matches:
        raise JobIdError(
            f"no job on the cluster has an id starting with {prefix!r}; `fraudctl jobs` lists them"
        )
    if len(matches) > 1:
        raise JobIdError(
            f"{prefix!r} matches {len(matches)} jobs: {', '.join(matches)}; give more of the id"
        )
    return matches[0]
