"""Render sql_templates/ with the config into one Flink SQL script and its statement list.

`render_script(settings)` gives the text `fraudctl render` prints and writes to target/job.sql;
`parse_script(text)` splits it into `SET` pairs, DDL/view statements and the inserts of the
statement set, which is what explain and submit execute through PyFlink. Both paths run the
same text, so what a person reads is exactly what runs.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from config import Settings
from config.rule_changes import initial_parameters
from config.rules import RuleInput, rule_models, rule_names, rules_reading, runtime_parameters
from config.stack import PROJECT_ROOT
from config.validators import duration_ms
from jobs.sql.filters import FILTERS
from udfs.rule_parameters import SETTINGS_PARAMETER, rule_columns
from udfs.rule_parameters import columns as rule_params_columns

TEMPLATES_DIR = PROJECT_ROOT / "sql_templates"
TARGET_DIR = PROJECT_ROOT / "target"
# what the Python UDF workers import: the UDFs and the config they are declared by
UDF_PACKAGES = ("udfs", "config")
RULES_DIR = TEMPLATES_DIR / "rules"
# Views written to Kafka besides the rules' `<rule>_alerts`; each has a sink `<view>_kafka`.
ANALYTICS_VIEWS = ("global_window_stats", "category_window_stats")
DEAD_LETTER_VIEWS = (
    "invalid_field_dead_letters",
    "unparsable_dead_letters",
    "late_event_dead_letters",
)
# Every read of the input topic (sql_templates/sources/): its table -> the suffix of its Kafka
# consumer group `<job.consumer_group>-<suffix>`, whose committed offsets tell how far that read
# has got (jobs/cluster/input_progress.py).
INPUT_READS = {
    "transactions": "json",
    "transactions_realtime": "realtime",
    "transactions_unparsed": "raw",
}


@dataclass
class JobStatements:
    """The rendered script split into what PyFlink executes."""

    settings: list[tuple[str, str]] = field(default_factory=list)
    ddl: list[str] = field(default_factory=list)
    inserts: list[str] = field(default_factory=list)


def environment() -> Environment:
    """The Jinja environment: StrictUndefined (a missing value stops rendering), SQL filters."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


def enabled_rules(settings: Settings) -> list[str]:
    """Names of the rules switched on in config, in rules-table order (config.rules.Rules)."""
    rules = settings.job.rules
    return [name for name in rule_names() if getattr(rules, name).enabled]


def _arriving_rules_enabled(settings: Settings) -> int:
    """How many of the rules that judge one transaction at a time are enabled."""
    arriving = rules_reading(RuleInput.ARRIVING)
    return sum(r in arriving for r in enabled_rules(settings))


def realtime_read(settings: Settings) -> bool:
    """Whether the per-transaction rules get a read of the input of their own
    (job.per_transaction_read `own` and at least one of them enabled)."""
    own = settings.job.per_transaction_read == "own"
    return own and _arriving_rules_enabled(settings) >= 1


def arriving_params_json(settings: Settings) -> bool:
    """Whether that read gives its rule's parameters as JSON text (the `rule_param` macro reads
    them with JSON_VALUE): when a single per-transaction rule is enabled, Flink merges its query
    into the Python operator that computes `rule_params`, and its planner cannot read a ROW's
    fields there (NullPointerException in RemoteCalcSplitRule). With two readers that operator
    stays on its own and the ROW is read as any other."""
    return realtime_read(settings) and _arriving_rules_enabled(settings) == 1


def input_reads(settings: Settings) -> dict[str, str]:
    """The reads of the input topic the rendered job makes (INPUT_READS): all of them, but
    `transactions_realtime` only when the per-transaction rules have a read of their own."""
    own = realtime_read(settings)
    return {table: g for table, g in INPUT_READS.items() if own or table != "transactions_realtime"}


# the lake's views (sql_templates/sinks/lake.sql.j2), each into its sink `<view>_parquet`
LAKE_VIEWS = ("lake_transactions", "lake_dead_letters")


def output_views(settings: Settings) -> list[str]:
    """Every view the statement set writes to Kafka, each into its sink `<view>_kafka`."""
    alerts = [f"{rule}_alerts" for rule in enabled_rules(settings)]
    return [*alerts, *ANALYTICS_VIEWS, *DEAD_LETTER_VIEWS]


def outputs(settings: Settings) -> dict[str, str]:
    """Every sink the statement set writes -> the view it writes: the Kafka outputs, and the
    lake's when lake.enabled."""
    kafka = {f"{view}_kafka": view for view in output_views(settings)}
    lake = {f"{view}_parquet": view for view in LAKE_VIEWS} if settings.lake.enabled else {}
    return kafka | lake


def risk_score_params(settings: Settings) -> str:
    """The risk_score UDF's settings as compact JSON (passed to it as a SQL string literal)."""
    r = settings.job.rules.risk_score
    return json.dumps(
        {
            "weights": r.weights,
            "amount_scale": r.amount_scale,
            "night_hours": list(r.night_hours),
            "risky_categories": r.risky_categories,
            "online_channels": r.online_channels,
            "home_currency": r.home_currency,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def rule_parameters_settings(settings: Settings, follow_topic: bool = True) -> str:
    """The rule_parameters UDF's settings as compact JSON (its job parameter): every rule's
    run-time parameters from config (version 0) and, with `follow_topic`, where fraud_rules is
    (udfs/rule_parameters.py)."""
    initial = initial_parameters(settings.job.rules)
    topic = settings.kafka.topics.rules if follow_topic else None
    return json.dumps(
        {"initial": initial, "bootstrap_servers": settings.kafka.bootstrap_servers, "topic": topic},
        sort_keys=True,
        separators=(",", ":"),
    )


def flink_map(entries: Mapping[str, str]) -> str:
    """The value of a map-typed Flink option (`key:value,...`) holding any text: each entry in
    single quotes and its value in double quotes, a quote inside doubled (Flink's
    StructuredOptionsSplitter), so commas, colons and quotes in a value stay in it."""
    out = []
    for key, value in entries.items():
        if not re.fullmatch(r"[\w.-]+", key):
            raise ValueError(f"job parameter name {key!r}: letters, digits, '.', '_', '-' only")
        entry = key + ':"' + value.replace('"', '""') + '"'
        out.append("'" + entry.replace("'", "''") + "'")
    return ",".join(out)


def udfs_zip(target_dir: Path = TARGET_DIR) -> Path:
    """Zip the packages the UDF workers import (`UDF_PACKAGES`, Python sources only) into
    target/udfs.zip for `python.files`."""
    target_dir.mkdir(parents=True, exist_ok=True)
    out = target_dir / "udfs.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for package in UDF_PACKAGES:
            for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
                zf.write(path, path.relative_to(PROJECT_ROOT))
    return out


def context(settings: Settings, python_files: str = "") -> dict[str, Any]:
    """Values the templates may use; nothing else is defined (StrictUndefined)."""
    own_read = realtime_read(settings)
    return {
        "flink": settings.flink,
        "kafka": settings.kafka,
        "job": settings.job,
        "enabled_rules": enabled_rules(settings),
        "realtime_read": own_read,
        "arriving_params_json": arriving_params_json(settings),
        "input_reads": INPUT_READS,
        # the view the per-transaction rules judge
        "per_transaction_input": (
            "scored_transactions_realtime" if own_read else "scored_transactions"
        ),
        "outputs": outputs(settings),
        "lake": settings.lake,
        "lake_uri": settings.lake_uri(),
        "risk_score_params": risk_score_params(settings),
        # pipeline.global-job-parameters: what the UDFs read in open()
        "job_parameters": flink_map({SETTINGS_PARAMETER: rule_parameters_settings(settings)}),
        # the rules' declarations (config/rules.py): what each is about, the view it reads,
        # its run-time parameters (-> SQL type) and their columns in the job
        "rule_entities": {name: model.entity for name, model in rule_models().items()},
        "rule_inputs": {name: str(model.reads) for name, model in rule_models().items()},
        "rule_param_types": {rule: runtime_parameters(rule) for rule in rule_names()},
        "rule_params_columns": rule_params_columns(),  # name -> SQL type
        "rule_params_by_rule": {rule: list(rule_columns(rule)) for rule in rule_names()},
        # the rules that count each transaction once, on time (windows, patterns, pairs)
        "counted_rules": rules_reading(RuleInput.ON_TIME, RuleInput.CARD_LEGS),
        "card_legs_rules": rules_reading(RuleInput.CARD_LEGS),
        "transaction_timeout_ms": duration_ms(settings.job.transaction_timeout),
        "python_bundle_time_ms": duration_ms(settings.flink.python_bundle_time),
        "source_fetch_wait_ms": duration_ms(settings.flink.source_fetch_wait),
        "cooldown_s": duration_ms(settings.job.alert_cooldown) // 1000,
        "scoring": settings.scoring,
        "profile_horizon_ms": duration_ms(settings.scoring.profile_horizon),
        "longest_state_ttl": max(
            (settings.job.state_ttl, settings.scoring.profile_horizon), key=duration_ms
        ),
        "models_path": str(settings.scoring.models_dir()),
        "python_files": python_files,
    }


JOB_TEMPLATE = "job.sql.j2"


def render_script(
    settings: Settings, python_files: str | None = None, template: str = JOB_TEMPLATE
) -> str:
    """The whole job as one SQL script (settings, DDL, views, one statement set); `template`
    renders another script of sql_templates/ with the same values instead (the benchmarks'
    read ceiling)."""
    if python_files is None:
        python_files = udfs_zip().as_uri() if settings.flink.ship_udfs else ""
    text = environment().get_template(template).render(context(settings, python_files))
    # collapse runs of blank lines left by template control blocks
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def split_statements(script: str) -> list[str]:
    """Split a SQL script at top-level ';' (outside quotes, backticks and comments).

    `EXECUTE STATEMENT SET BEGIN ... END;` stays one statement. Comments are dropped.
    """
    statements: list[str] = []
    buf: list[str] = []
    i, n = 0, len(script)
    in_set = False
    while i < n:
        ch = script[i]
        if ch == "-" and script.startswith("--", i):
            j = script.find("\n", i)
            i = n if j < 0 else j
            continue
        if ch in ("'", "`"):
            j = i + 1
            while j < n:
                if script[j] == ch:
                    if j + 1 < n and script[j + 1] == ch:  # doubled quote
                        j += 2
                        continue
                    break
                j += 1
            buf.append(script[i : j + 1])
            i = j + 1
            continue
        if ch == ";":
            stmt = "".join(buf).strip()
            upper = re.sub(r"\s+", " ", stmt.upper())
            if upper.startswith("EXECUTE STATEMENT SET") and not in_set:
                in_set = True
            if in_set and not upper.endswith(" END"):
                buf.append(";")
                i += 1
                continue
            in_set = False
            if stmt:
                statements.append(stmt)
            buf = []
            i += 1
            continue
        buf.append(ch)
        i += 1
    tail = "".join(buf).strip()
    if tail:
        statements.append(tail)
    return statements


_SET_RE = re.compile(r"^SET\s+'((?:[^']|'')*)'\s*=\s*'((?:[^']|'')*)'$", re.IGNORECASE | re.DOTALL)
_SET_BODY_RE = re.compile(
    r"^EXECUTE\s+STATEMENT\s+SET\s+BEGIN\s+(.*)\s+END$", re.IGNORECASE | re.DOTALL
)


def parse_script(script: str) -> JobStatements:
    """Sort a rendered script's statements into SET pairs, DDL/views and inserts."""
    out = JobStatements()
    for stmt in split_statements(script):
        if m := _SET_RE.match(stmt):
            out.settings.append((m.group(1).replace("''", "'"), m.group(2).replace("''", "'")))
        elif m := _SET_BODY_RE.match(stmt):
            out.inserts.extend(s for s in split_statements(m.group(1)) if s)
        else:
            out.ddl.append(stmt)
    return out


def write_script(settings: Settings, target_dir: Path = TARGET_DIR) -> tuple[Path, str]:
    """Render and write target/job.sql; return its path and text."""
    text = render_script(settings)
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / "job.sql"
    path.write_text(text)
    return path, text
