"""Each rule is one unit: a config entry, a template and a case file, all found from the config
model's list of rules; the harness feeds rules exactly what the job's view gives them."""

from __future__ import annotations

import pytest

from config import load_settings
from config.rules import rule_names
from jobs.history.replay import replay_script
from jobs.sql.render import RULES_DIR, parse_script, render_script
from tests.rules.harness import case_file, load_cases


def test_every_rule_has_a_template_and_a_case_file():
    missing = [
        str(path)
        for rule in rule_names()
        for path in (RULES_DIR / f"{rule}.sql.j2", case_file(rule))
        if not path.exists()
    ]
    assert missing == []


def test_every_template_and_case_file_belongs_to_a_configured_rule():
    names = {p.name.split(".", 1)[0] for p in RULES_DIR.iterdir() if p.is_file()}
    assert names == set(rule_names())


@pytest.mark.parametrize("rule", rule_names())
def test_each_rule_has_hits_and_near_misses(rule):
    cases = load_cases(rule)
    assert any(c.expect for c in cases), f"{rule}: no case that alerts"
    assert any(not c.expect for c in cases), f"{rule}: no near miss"


@pytest.mark.parametrize("rule", rule_names())
def test_each_rule_template_holds_its_views_and_its_sink(rule):
    text = render_script(load_settings(), python_files="")
    for name in (f"`{rule}_candidates`", f"`{rule}_alerts`", f"`{rule}_alerts_kafka`"):
        assert f"CREATE TEMPORARY {'TABLE' if 'kafka' in name else 'VIEW'} {name}" in text
    assert f"INSERT INTO `{rule}_alerts_kafka` SELECT * FROM `{rule}_alerts`" in text


def _columns(t_env, name: str) -> dict[str, str]:
    """The columns of table or view `name` -> their types; a ROW as {field: type}."""
    schema = t_env.from_path(name).get_schema()
    return {
        n: {f.name: repr(f.data_type) for f in t.fields} if hasattr(t, "fields") else repr(t)
        for n, t in zip(schema.get_field_names(), schema.get_field_data_types(), strict=True)
    }


def test_the_replay_source_has_the_job_views_columns_and_types(tmp_path):
    """A replay (the rule cases, a backtest) feeds every rule one table; each view of the job a
    rule reads has the same columns and types in it (the per-transaction rules' view only some
    of them), and `rule_params` there holds the fields of every rule (each view's only those of
    its rules)."""
    from jobs.cluster.submit import statement_set, table_environment

    settings = load_settings()
    job = parse_script(render_script(settings, python_files=""))
    job_env = table_environment(job, {})
    statement_set(job_env, job)
    harness = parse_script(replay_script(settings, ["high_value"], tmp_path / "rows.jsonl"))
    harness_env = table_environment(harness, {})
    statement_set(harness_env, harness)

    fed = _columns(harness_env, "scored_transactions")
    # the replay's input time, which its rowtime parses as the job's source does
    assert fed.pop("event_time").startswith("VarCharType")
    # whether the live job found the row late (a replay of the lake leaves those out)
    assert fed.pop("late").startswith("BooleanType")
    fed_params = fed.pop("rule_params")
    for view in ("scored_transactions", "scored_transactions_realtime"):
        read = _columns(job_env, view)
        params = read.pop("rule_params")
        if view == "scored_transactions_realtime":
            # HIGH_VALUE's own read takes its parameters as JSON text (render.py
            # arriving_params_json); the replay gives it the ROW, read alike (macros rule_param)
            assert params.startswith("VarCharType"), params
        else:
            assert params.items() <= fed_params.items(), view
        assert read == {n: fed[n] for n in read}, view
    assert _columns(job_env, "scored_transactions").keys() - {"rule_params"} == fed.keys()
