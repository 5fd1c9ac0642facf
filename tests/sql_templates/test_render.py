"""Rendering without Flink: structure of the script, settings, rules switched off, injection."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jinja2 import UndefinedError

from config import ConfigError, load_settings
from config.rules import rule_names
from jobs.history.replay import replay_script
from jobs.sql.render import (
    environment,
    flink_map,
    input_reads,
    parse_script,
    render_script,
    split_statements,
)
from udfs.rule_parameters import SETTINGS_PARAMETER

RULES = rule_names()


@pytest.fixture(scope="module")
def script() -> str:
    return render_script(load_settings(), python_files="")


def test_script_sets_checkpointing_restart_ttl_timezone_and_name(script):
    settings = dict(parse_script(script).settings)
    assert settings["execution.checkpointing.interval"] == "60 s"
    assert settings["execution.checkpointing.mode"] == "EXACTLY_ONCE"
    assert settings["restart-strategy.type"] == "exponential-delay"
    assert settings["restart-strategy.exponential-delay.max-backoff"] == "1 min"
    # the longest state the job keeps: a card's behaviour profile (the rest get theirs in the
    # compiled plan, tests/jobs/test_dedup_horizon.py)
    assert settings["table.exec.state.ttl"] == load_settings().scoring.profile_horizon
    assert settings["table.exec.uid.generation"] == "DISABLED"  # savepoints of older jobs
    assert settings["table.local-time-zone"] == "UTC"
    assert settings["table.exec.source.idle-timeout"] == "10 s"
    assert settings["pipeline.name"] == "fraud-detection"
    assert settings["parallelism.default"] == "1"
    assert settings["state.backend.type"] == "hashmap"
    assert "execution.checkpointing.incremental" not in settings  # hashmap snapshots are full
    assert not any(k.startswith("state.backend.rocksdb.") for k in settings)
    assert settings["pipeline.object-reuse"] == "true"


def test_rocksdb_state_backend_checkpoints_incrementally_and_filters_lookups():
    text = render_script(load_settings(flink={"state_backend": "rocksdb"}), python_files="")
    settings = dict(parse_script(text).settings)
    assert settings["state.backend.type"] == "rocksdb"
    assert settings["execution.checkpointing.incremental"] == "true"
    assert settings["state.backend.rocksdb.use-bloom-filter"] == "true"
    assert settings["state.backend.rocksdb.predefined-options"] == "FLASH_SSD_OPTIMIZED"


def test_the_cluster_state_backend_is_kept_when_config_leaves_it_empty():
    text = render_script(load_settings(flink={"state_backend": ""}), python_files="")
    assert "state.backend.type" not in text


def test_script_has_python_functions_sources_and_one_statement_set(script):
    assert (
        "CREATE TEMPORARY FUNCTION card_token AS 'udfs.card_token.card_token_udf' LANGUAGE PYTHON"
        in script
    )
    assert "CREATE TEMPORARY FUNCTION risk_score" in script
    assert script.count("EXECUTE STATEMENT SET") == 1
    assert script.rstrip().endswith("END;")
    assert "WATERMARK FOR rowtime AS rowtime - INTERVAL '5' SECOND" in script
    assert "'json.ignore-parse-errors' = 'true'" in script
    assert "'format' = 'raw'" in script


def test_every_insert_of_the_default_job_is_in_the_statement_set(script):
    parsed = parse_script(script)
    targets = [re.match(r"INSERT INTO `?(\w+)`?", i).group(1) for i in parsed.inserts]
    assert targets == [f"{r}_alerts_kafka" for r in RULES] + [
        "global_window_stats_kafka",
        "category_window_stats_kafka",
        "invalid_field_dead_letters_kafka",
        "unparsable_dead_letters_kafka",
        "late_event_dead_letters_kafka",
        "lake_transactions_parquet",
        "lake_dead_letters_parquet",
    ]
    assert not any(s.upper().startswith("INSERT") for s in parsed.ddl)


def test_the_lake_writes_parquet_partitioned_by_hour_under_its_path(tmp_path):
    text = render_script(load_settings(lake={"path": str(tmp_path / "lk")}), python_files="")
    assert f"'path' = '{(tmp_path / 'lk').as_uri()}/transactions'" in text
    assert f"'path' = '{(tmp_path / 'lk').as_uri()}/dead_letters'" in text
    assert text.count("PARTITIONED BY (dt, hr)") == 2
    assert text.count("'format' = 'parquet'") == 2
    assert "'sink.partition-commit.delay' = '1 h'" in text
    lake = text.split("CREATE TEMPORARY VIEW lake_transactions AS")[1]
    assert "card_number" not in lake


def test_without_the_lake_the_job_has_no_filesystem_sink():
    text = render_script(load_settings(lake={"enabled": False}), python_files="")
    assert "'connector' = 'filesystem'" not in text
    assert "_parquet" not in "".join(parse_script(text).inserts)


def test_the_lake_path_may_be_a_filesystem_uri_and_a_local_path_becomes_one():
    assert load_settings(lake={"path": "s3://bucket/lake/"}).lake_uri() == "s3://bucket/lake"
    local = load_settings(lake={"path": "some/dir"}).lake_uri()
    assert local.startswith("file:///") and local.endswith("/some/dir")


def test_sinks_are_at_least_once_by_default(script):
    assert script.count("'sink.delivery-guarantee' = 'at-least-once'") == len(RULES) + 5
    assert "exactly-once" not in script
    assert "transactional-id-prefix" not in script


def test_exactly_once_sinks_have_distinct_transactional_prefixes():
    text = render_script(load_settings(job={"delivery_guarantee": "exactly-once"}), "")
    prefixes = re.findall(r"'sink.transactional-id-prefix' = '([^']+)'", text)
    assert len(prefixes) == len(RULES) + 5
    assert len(set(prefixes)) == len(prefixes)
    assert text.count("'sink.delivery-guarantee' = 'exactly-once'") == len(prefixes)
    # 15 min: below the broker's default transaction.max.timeout.ms (15 min) and 1 h
    assert "'properties.transaction.timeout.ms' = '900000'" in text


def test_the_python_operator_flushes_its_batches_every_100_ms(script):
    assert dict(parse_script(script).settings)["python.fn-execution.bundle.time"] == "100"


def test_the_python_operators_arrow_batch_size_is_a_setting(script):
    assert dict(parse_script(script).settings)["python.fn-execution.arrow.batch.size"] == "1000"
    text = render_script(load_settings(flink={"python_arrow_batch_size": 250}), python_files="")
    assert dict(parse_script(text).settings)["python.fn-execution.arrow.batch.size"] == "250"
    with pytest.raises(ConfigError, match="python_arrow_batch_size"):
        load_settings(flink={"python_arrow_batch_size": 0})


def test_every_read_of_the_input_topic_batches_its_fetches_for_at_most_the_fetch_wait():
    text = render_script(load_settings(flink={"source_fetch_wait": "20 ms"}), python_files="")
    sources = re.findall(r"CREATE TEMPORARY TABLE `?(transactions\w*)`? \((.*?)\n\);", text, re.S)
    assert sorted(name for name, _ in sources) == [
        "transactions",
        "transactions_realtime",
        "transactions_unparsed",
    ]
    for _, ddl in sources:
        assert "'properties.fetch.max.wait.ms' = '20'" in ddl
        assert "'properties.fetch.min.bytes' = '65536'" in ddl


@pytest.mark.parametrize("per_transaction_read", ["own", "shared"])
def test_each_read_of_the_input_topic_commits_in_the_consumer_group_progress_watches(
    per_transaction_read: str,
):
    # jobs/cluster/input_progress.py tells how far the job has read from these groups' offsets:
    # a read the templates named otherwise would never look done (or a missing one always would)
    s = load_settings(job={"per_transaction_read": per_transaction_read})
    text = render_script(s, python_files="")
    sources = re.findall(r"CREATE TEMPORARY TABLE `?(transactions\w*)`? \((.*?)\n\);", text, re.S)
    groups = {
        name: re.search(r"'properties\.group\.id' = '([^']*)'", ddl).group(1)
        for name, ddl in sources
    }
    reads = input_reads(s)
    assert groups == {t: f"{s.job.consumer_group}-{g}" for t, g in reads.items()}
    assert ("transactions_realtime" in reads) == (per_transaction_read == "own")


def test_the_per_transaction_rule_keeps_its_own_read_and_reads_its_parameters_as_json():
    # HIGH_VALUE is the one rule judged on arrival (RISK_SCORE waits for the card's behaviour
    # features): Flink cannot plan a ROW field read next to the Python call with a single
    # reader (render.arriving_params_json), so its parameters come as JSON text
    s = load_settings()
    assert "transactions_realtime" in input_reads(s)
    text = render_script(s, python_files="")
    realtime = text[text.index("CREATE TEMPORARY VIEW `scored_transactions_realtime`") :]
    assert "`per_transaction_rule_parameters_json`(" in realtime[: realtime.index(";")]
    rule = text[text.index("CREATE TEMPORARY VIEW `high_value_candidates`") :]
    rule = rule[: rule.index(";")]
    assert "JSON_VALUE(rule_params, '$.high_value_enabled' RETURNING BOOLEAN)" in rule
    assert "rule_params.`" not in rule
    # a replay reads the ROW its rows carry
    assert "JSON_VALUE(rule_params" not in replay_script(s, ["high_value"], Path("rows.json"))


def test_risk_score_judges_the_cards_behaviour_by_the_promoted_model():
    s = load_settings(scoring={"enabled": True, "profile_horizon": "7 d"})
    text = render_script(s, python_files="")
    legs = text[text.index("CREATE TEMPORARY VIEW card_legs") :]
    legs = legs[: legs.index(";")]
    assert "card_behaviour(" in legs and "CAST(604800000 AS BIGINT)" in legs
    rule = text[text.index("CREATE TEMPORARY VIEW `risk_score_candidates`") :]
    rule = rule[: rule.index(";")]
    assert "FROM card_legs" in rule
    assert re.search(
        rf"risk_model\(\s+`risk_score_model_version`, '{s.scoring.models_dir()}',", rule
    )


@pytest.mark.parametrize(
    ("startup_mode", "reset"),
    [("group-offsets", "'properties.auto.offset.reset' = 'earliest'"), ("earliest-offset", None)],
)
def test_with_group_offsets_every_read_starts_a_group_with_nothing_committed_at_the_earliest(
    startup_mode: str, reset: str | None
):
    text = render_script(load_settings(job={"startup_mode": startup_mode}), python_files="")
    sources = re.findall(r"CREATE TEMPORARY TABLE `?(transactions\w*)`? \((.*?)\n\);", text, re.S)
    assert len(sources) == 3
    for _, ddl in sources:
        assert f"'scan.startup.mode' = '{startup_mode}'" in ddl
        assert (reset in ddl) if reset else ("auto.offset.reset" not in ddl)


def test_the_cooldown_period_must_be_whole_seconds():
    with pytest.raises(ConfigError, match="alert_cooldown"):
        load_settings(job={"alert_cooldown": "1500 ms"})


def test_rule_thresholds_come_from_config_as_version_0_of_the_run_time_parameters():
    s = load_settings(
        job={
            "rules": {
                "velocity": {"max_count": 7, "window": "10 min", "slide": "2 min"},
                "high_value": {"amount_over": "1234.56"},
            }
        }
    )
    text = render_script(s, python_files="")
    # thresholds are version 0 of the run-time parameters, in the rule_parameters UDF's settings
    initial = json.loads(_job_parameters(text)[SETTINGS_PARAMETER])["initial"]
    assert initial["velocity"]["max_count"] == 7
    assert initial["high_value"]["amount_over"] == "1234.56"
    assert "WHERE enabled AND txn_count > max_count" in text
    # window lengths are structural: rendered into the SQL
    assert "INTERVAL '2' MINUTE, INTERVAL '10' MINUTE" in text


@pytest.mark.parametrize("rule", RULES)
def test_each_rule_is_omitted_when_disabled(rule):
    s = load_settings(job={"rules": {rule: {"enabled": False}}})
    text = render_script(s, python_files="")
    assert f"'{rule.upper()}' AS rule" not in text
    assert f"{rule}_candidates" not in text
    assert f"{rule}_alerts" not in text
    for other in set(RULES) - {rule}:
        assert f"INSERT INTO `{other}_alerts_kafka`" in text


@pytest.mark.parametrize("read", ["own", "shared"])
def test_no_card_number_column_reaches_any_sink_or_rule(read):
    script = render_script(load_settings(job={"per_transaction_read": read}), python_files="")
    # after the scored views (from each read's valid transactions) only card_token and
    # card_last4 exist
    scoring = re.findall(r"CREATE TEMPORARY VIEW `(scored_transactions\w*)`", script)
    assert scoring == (
        ["scored_transactions", "scored_transactions_realtime"]
        if read == "own"
        else ["scored_transactions"]
    )
    body = re.split(r"FROM `valid_transactions\w*`;", script)[-1]
    assert "CREATE TEMPORARY VIEW unique_transactions" in body
    assert "card_number" not in body


def test_the_card_token_secret_never_appears_in_the_script(monkeypatch):
    monkeypatch.setenv("FRAUD_CARD_TOKEN_SECRET", "s3cr3t-key-for-test")
    s = load_settings()
    assert "s3cr3t-key-for-test" not in render_script(s, python_files="")


@pytest.mark.parametrize(
    "overrides",
    [
        {"kafka": {"topics": {"transactions": "x'); DROP TABLE t; --"}}},
        {"kafka": {"bootstrap_servers": "h:1'); DROP TABLE t; --"}},
        {"job": {"watermark_delay": "1' SECOND; DROP TABLE t; --"}},
        {"job": {"alert_cooldown": "5 min'"}},
        {"job": {"transactional_id_prefix": "a'b"}},
        {"job": {"rules": {"velocity": {"window": "1' SECOND; --"}}}},
        {"job": {"rules": {"high_value": {"amount_over": "1; DROP TABLE t"}}}},
        {"job": {"rules": {"velocity": {"severity": "HIGH'; --"}}}},
        {"flink": {"checkpoint_interval": "10 s'); --"}},
        {"lake": {"path": "/tmp/x'); DROP TABLE t; --"}},
        {"lake": {"path": "http://example.com/lake"}},
        {"lake": {"commit_delay": "1 h'"}},
    ],
)
def test_injection_attempts_are_refused_by_config_validation(overrides):
    with pytest.raises(ConfigError) as err:
        load_settings(**overrides)
    section = next(iter(overrides))
    assert section in str(err.value)


def test_strict_undefined_stops_rendering_on_a_missing_value():
    template = environment().from_string("SELECT {{ missing | sql_number }}")
    with pytest.raises(UndefinedError):
        template.render()


def test_split_statements_respects_quotes_comments_and_statement_sets():
    text = (
        "SET 'a' = 'x;y';\n-- a comment; with a semicolon\n"
        "CREATE VIEW v AS SELECT 'it''s;' AS s;\n"
        "EXECUTE STATEMENT SET\nBEGIN\nINSERT INTO a SELECT 1;\nINSERT INTO b SELECT 2;\nEND;\n"
    )
    stmts = split_statements(text)
    assert stmts[0] == "SET 'a' = 'x;y'"
    assert stmts[1] == "CREATE VIEW v AS SELECT 'it''s;' AS s"
    assert stmts[2].startswith("EXECUTE STATEMENT SET") and stmts[2].endswith("END")
    parsed = parse_script(text)
    assert parsed.settings == [("a", "x;y")]
    assert parsed.inserts == ["INSERT INTO a SELECT 1", "INSERT INTO b SELECT 2"]


def test_ship_udfs_adds_python_files(tmp_path):
    s = load_settings(flink={"ship_udfs": True})
    text = render_script(s)
    m = re.search(r"SET 'python.files' = '(file:[^']+udfs.zip)'", text)
    assert m, "python.files is not set"


def test_every_template_opens_with_a_sql_comment():
    from jobs.sql.render import TEMPLATES_DIR

    for path in TEMPLATES_DIR.rglob("*.sql.j2"):
        if path.name == "macros.sql.j2":
            continue
        lines = path.read_text().splitlines()
        first = next(line for line in lines if not line.startswith(("{%", "{#")))
        assert first.startswith("--"), f"{path} does not open with a SQL comment"


def _flink_map(value: str) -> dict[str, str]:
    """The job parameters `value` gives, as Flink itself parses them (in-process JVM)."""
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm.org.apache.flink.configuration
    conf = jvm.Configuration()
    conf.setString("pipeline.global-job-parameters", value)
    return dict(conf.get(jvm.PipelineOptions.GLOBAL_JOB_PARAMETERS))


def _job_parameters(script: str) -> dict[str, str]:
    """The job parameters a rendered script sets (pipeline.global-job-parameters)."""
    return _flink_map(dict(parse_script(script).settings)["pipeline.global-job-parameters"])


@pytest.mark.parametrize(
    "value", ['{"a":"b,c","d":[1,2]}', 'it\'s a "quoted" value: with, every; mark', ""]
)
def test_a_job_parameter_reaches_flink_as_written(value):
    assert _flink_map(flink_map({"fraud.x": value, "other": "y"})) == {
        "fraud.x": value,
        "other": "y",
    }


def test_a_job_parameter_name_that_flink_would_split_is_refused():
    with pytest.raises(ValueError, match="job parameter name"):
        flink_map({"a:b": "x"})
