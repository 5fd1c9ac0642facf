"""Live rule tuning: `fraudctl rules set` on the running job changes what it judges from the
change's effective time on, with no restart, and a replay of the same input with the same
rules history raises the same alert ids.

One job on the live stack reads: a 3-purchase burst (card C) and a 900.00 purchase (card D),
then two changes (VELOCITY max_count 3 -> 2, HIGH_VALUE disabled), then the same again after
the changes' effective time (cards B and E), and a far-later transaction that moves the
watermark past every window. A second job then replays the same input topic and rules topic
with RISK_SCORE switched off: HIGH_VALUE then reads alone from its own read of the input, its
parameters as JSON text (jobs/sql/render.py arriving_params_json), and must judge alike.
"""

from __future__ import annotations

import getpass
import json
import time
import uuid
from typing import Any

import pytest

from config import Settings, load_settings
from fraudctl.mongo import client_for
from jobs.sql.render import arriving_params_json
from tests.jobs.crafted import Crafted
from tests.jobs.live_job import LiveJob, has_alert
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _job(
    base: Settings, uid: str, rule_config: dict[str, Any] | None = None, **topics: str
) -> LiveJob:
    """A run with a private MongoDB database (for rule_changes), reading `topics` if given,
    with `rule_config` as its config's job.rules if given."""
    job = LiveJob.create(base, uid, **({"rules": rule_config} if rule_config else {}))
    job.overrides["mongo"] = {"database": f"t{uid}"}
    job.overrides["kafka"]["topics"].update(topics)
    job.settings = load_settings(**job.overrides)
    return job


@pytest.fixture(scope="module")
def tuned(live_stack: Settings) -> dict[str, Any]:
    c = Crafted(t0_ms=int(time.time() * 1000) - 5000)
    cards, token = c.named_cards("CDBEZ", live_stack.card_token_secret())
    for i in range(3):
        c.add(c.txn(cards["C"], i))
    c.add(c.txn(cards["D"], 3, "900.00"))

    job = _job(live_stack, uuid.uuid4().hex[:10])
    replay: LiveJob | None = None
    try:
        job.produce(c.records)
        job.start()
        alerts_topic = job.settings.kafka.topics.fraud_alerts
        job.read(alerts_topic, has_alert("HIGH_VALUE", token["D"]), 180)  # the job is judging

        changes = [
            json.loads(job.fraudctl("rules", "set", "velocity", "max_count=2", "--json")),
            json.loads(job.fraudctl("rules", "set", "HIGH_VALUE", "enabled=false", "--json")),
        ]
        effective_ms = max(ch["effective_at_ms"] for ch in changes)
        wait_until(lambda: time.time() * 1000 > effective_ms, 10, "the changes' effective time")
        after_s = (effective_ms - c.t0_ms) / 1000 + 1
        c.records.clear()
        for i in range(3):
            c.add(c.txn(cards["B"], after_s + i))
        c.add(c.txn(cards["E"], after_s + 3, "900.00"))
        c.add(c.txn(cards["Z"], after_s + 400))  # the watermark passes every window above
        job.produce(c.records)
        alerts = job.read(alerts_topic, has_alert("VELOCITY", token["B"]), 180, settle_s=5)
        history = json.loads(job.fraudctl("rules", "history", "--json"))

        def listed() -> dict[str, Any]:
            return {r["rule"]: r for r in json.loads(job.fraudctl("rules", "list", "--json"))}

        # the job's metrics (one per Python operator, refreshed by Flink's metric fetcher every
        # 10 s) catch up: the per-transaction read's operator reports HIGH_VALUE and RISK_SCORE
        def all_applied() -> dict[str, Any] | None:
            rows = listed()
            return rows if all(r["applied"] == r["version"] for r in rows.values()) else None

        listing = wait_until(
            all_applied,
            60,
            "`rules list` to show the job applied every version written",
            every_s=2,
        )

        t = job.settings.kafka.topics
        replay = _job(
            live_stack,
            uuid.uuid4().hex[:10],
            rule_config={"risk_score": {"enabled": False}},
            transactions=t.transactions,
            rules=t.rules,
        )
        assert arriving_params_json(replay.settings)
        replay.start()
        replayed = replay.read(
            replay.settings.kafka.topics.fraud_alerts, has_alert("VELOCITY", token["B"]), 180, 5
        )
    finally:
        for run in (replay, job):
            if run is not None:
                run.close()
                run.delete_topics()
                with client_for(run.settings) as client:
                    client.drop_database(run.settings.mongo.database)
    return {
        "alerts": [m["value"] for m in alerts],
        "replayed": [m["value"] for m in replayed],
        "changes": changes,
        "history": history,
        "listing": listing,
        "token": token,
    }


def _entities(alerts: list[dict], rule: str) -> set[str]:
    return {a["entity_id"] for a in alerts if a["rule"] == rule}


def test_lowering_max_count_makes_the_next_burst_alert_and_not_the_one_before(tuned) -> None:
    token = tuned["token"]
    assert _entities(tuned["alerts"], "VELOCITY") == {token["B"]}
    (alert,) = [a for a in tuned["alerts"] if a["rule"] == "VELOCITY"]
    assert alert["rule_version"] == 1
    assert alert["details"] == {"count": 3, "threshold": 2}


def test_disabling_a_rule_stops_its_alerts(tuned) -> None:
    token = tuned["token"]
    assert _entities(tuned["alerts"], "HIGH_VALUE") == {token["D"]}
    (alert,) = [a for a in tuned["alerts"] if a["rule"] == "HIGH_VALUE"]
    assert alert["rule_version"] == 0


def test_every_change_is_kept_with_who_when_and_the_old_and_new_values(tuned) -> None:
    history = tuned["history"]
    assert [(h["rule"], h["version"]) for h in history] == [("velocity", 1), ("high_value", 1)]
    assert all(h["changed_by"] == getpass.getuser() and h["changed_at"] for h in history)
    assert history[0]["old"]["max_count"] == 3 and history[0]["new"]["max_count"] == 2
    assert history[1]["old"]["enabled"] is True and history[1]["new"]["enabled"] is False


def test_a_replay_with_the_same_rules_history_gives_the_same_alert_ids(tuned) -> None:
    # the replay has RISK_SCORE off, and HIGH_VALUE reads its parameters as JSON text there
    assert not _entities(tuned["alerts"], "RISK_SCORE"), "RISK_SCORE fired on the crafted input"
    ids = sorted(a["alert_id"] for a in tuned["alerts"])
    assert ids, "no alert in the tuned run"
    assert sorted(a["alert_id"] for a in tuned["replayed"]) == ids
    assert {a["rule_version"] for a in tuned["replayed"] if a["rule"] == "VELOCITY"} == {1}


def test_rules_list_shows_each_version_written_beside_the_one_the_job_applied(tuned) -> None:
    listing = tuned["listing"]
    written = {rule: row["version"] for rule, row in listing.items()}
    applied = {rule: row["applied"] for rule, row in listing.items()}
    assert written["VELOCITY"] == written["HIGH_VALUE"] == 1
    assert applied == written  # every rule, the untouched ones at version 0
