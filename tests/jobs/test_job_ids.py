"""Resolving a job id prefix against the cluster's ids."""

from __future__ import annotations

import pytest

from jobs.cluster.job_ids import JobIdError, resolve_job_id

A = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
B = "a1b2ff00000000000000000000000000"
C = "c0ffee00000000000000000000000000"


@pytest.mark.parametrize(("prefix", "expected"), [(A, A), ("a1b2c", A), ("a1b2f", B), ("c", C)])
def test_a_unique_prefix_or_whole_id_resolves_to_the_whole_id(prefix, expected):
    assert resolve_job_id(prefix, [A, B, C]) == expected


def test_an_ambiguous_prefix_lists_every_matching_id():
    with pytest.raises(JobIdError) as err:
        resolve_job_id("a1b2", [A, B, C])
    message = str(err.value)
    assert "2 jobs" in message and A in message and B in message and C not in message


@pytest.mark.parametrize("job_ids", [[A, B, C], []])
def test_an_unknown_prefix_is_a_clear_error(job_ids):
    with pytest.raises(JobIdError, match="no job on the cluster has an id starting with 'dead'"):
        resolve_job_id("dead", job_ids)


def test_an_empty_prefix_names_no_job_even_when_only_one_runs():
    with pytest.raises(JobIdError, match="give a job id"):
        resolve_job_id("", [A])


def test_an_id_listed_twice_is_not_ambiguous():
    assert resolve_job_id("c0", [C, C]) == C
