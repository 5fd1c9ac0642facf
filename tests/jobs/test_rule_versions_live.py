"""`fraudctl rules set` by two analysts at once: the broker serialises the writes of one rule,
so no two changes ever carry the same version, and the one that lost is refused whole."""

from __future__ import annotations

import pytest

from jobs.rule_admin.versions import RuleChangeConflict, current_history, publish_change

pytestmark = pytest.mark.integration


def test_a_change_written_meanwhile_refuses_the_other_whole(private_rules) -> None:
    def second_analyst() -> None:
        publish_change(private_rules, "velocity", {"max_count": "5"}, changed_by="bo")

    with pytest.raises(RuleChangeConflict, match="another change of velocity"):
        publish_change(
            private_rules,
            "velocity",
            {"max_count": "2"},
            changed_by="ana",
            before_commit=second_analyst,
        )
    latest = current_history(private_rules).latest("velocity")
    assert (latest.version, latest.params["max_count"], latest.changed_by) == (1, 5, "bo")


def test_changes_one_after_the_other_get_the_next_versions(private_rules) -> None:
    versions = [
        publish_change(private_rules, "high_value", {"amount_over": str(a)})[1].version
        for a in (400, 300)
    ]
    versions.append(publish_change(private_rules, "velocity", {"max_count": "2"})[1].version)
    assert versions == [1, 2, 1]
