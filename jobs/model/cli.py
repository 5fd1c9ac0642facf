"""`fraudctl model train | list | show | promote | rollback`: the learned risk model's versions.

A model is trained on the behaviour features of the lake's history (or of generated traffic),
stored as the next version of the model store (jobs/model/store.py), and put in force by
promoting it: a rule change `risk_score.model_version=V` published as `fraudctl rules set`
publishes one (jobs/rule_admin/versions.py), so the running job applies it by event time with
no restart. Version 0 is the heuristic weighted sum, always valid. docs/scoring.md tells the
whole story.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from config import Settings
from fraudctl.cli_common import (
    ConfigOption,
    JsonOption,
    console,
    err_console,
    fail,
    print_json,
    print_table,
    settings,
    utc_option,
)

RULE = "risk_score"
KEY = "model_version"

model_app = typer.Typer(
    help=(
        "The learned risk model of RISK_SCORE: train a version on history, list and show the "
        "stored versions, promote one in the running job (a rule change), roll back. Version 0 "
        "is the heuristic weighted sum."
    ),
    no_args_is_help=True,
)

VersionArgument = Annotated[
    int,
    typer.Argument(
        help="A model version: a number `fraudctl model list` shows (0: the heuristic).", min=0
    ),
]


def _store(s: Settings) -> Any:
    from jobs.model.store import ModelStore

    return ModelStore.from_settings(s)


def _promoted_version(s: Settings) -> int | None:
    """The model version in force now (the newest risk_score version of fraud_rules, or the
    config's), or None when fraud_rules cannot be read."""
    from confluent_kafka import KafkaException

    from jobs.rule_admin.versions import current_history

    try:
        return int(current_history(s, timeout_s=10).latest(RULE).params[KEY])
    except (RuntimeError, TimeoutError, KafkaException):
        return None


def previous_model_version(versions: Sequence[Any]) -> int | None:
    """The model version in force before the current one: walking the rule's versions (oldest
    first, `ParameterHistory.versions`) back from the newest, the first whose model_version
    differs from the newest's; None when every version has the same."""
    if not versions:
        return None
    current = versions[-1].params.get(KEY)
    for version in reversed(versions[:-1]):
        if version.params.get(KEY) != current:
            return int(version.params[KEY])
    return None


def _metric_rows(meta: dict[str, Any]) -> list[dict[str, Any]]:
    m = meta.get("metrics") or {}
    return [
        {"figure": "rows (positives)", "value": f"{meta.get('rows')} ({meta.get('positives')})"},
        {
            "figure": "hold-out rows (positives)",
            "value": f"{m.get('holdout_rows')} ({m.get('holdout_positives')}), from "
            f"{m.get('holdout_from')}",
        },
        {"figure": "threshold", "value": m.get("threshold"), "how": m.get("threshold_rule")},
        {"figure": "precision", "value": m.get("precision"), "how": "hold-out, at the threshold"},
        {"figure": "recall", "value": m.get("recall"), "how": "hold-out, at the threshold"},
        {"figure": "PR-AUC", "value": m.get("pr_auc"), "how": "hold-out, average precision"},
    ]


@model_app.command("train")
def train_model(
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Event time the lake's range starts at (ISO-8601, UTC).",
            show_default=False,
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Event time the lake's range ends before (ISO-8601, UTC).",
            show_default=False,
        ),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            exists=True,
            dir_okay=False,
            help="The producer's truth file (`fraudctl produce --truth`) of the range: the "
            "transactions of scenarios expecting RISK_SCORE are the fraud, all others not.",
            show_default=False,
        ),
    ] = None,
    warmup: Annotated[
        str,
        typer.Option(
            "--warmup",
            help="History read before --from to build each card's profile (a duration such as "
            "'1 d'); only the range's transactions are trained on. Without it a card's first "
            "purchases in the range look new to it.",
        ),
    ] = "0 s",
    generated: Annotated[
        bool,
        typer.Option(
            "--generated",
            help="Train on generated traffic (the producer's, labelled by it) instead of the lake.",
        ),
    ] = False,
    seed: Annotated[
        int, typer.Option("--seed", help="With --generated: the generator's seed.")
    ] = 7,
    events: Annotated[
        int, typer.Option("--events", help="With --generated: how many transactions.", min=100)
    ] = 200_000,
    population: Annotated[
        int | None,
        typer.Option(
            "--population",
            min=1,
            help="With --generated: cards (default: the config's producer.population).",
            show_default=False,
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            min=0.001,
            help="With --generated: transactions per second of event time (default: the "
            "config's producer.rate). Rate / population sets how often a card buys, which "
            "the behaviour features see: train at the ratio the model will score.",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Train a model and store it as the next version (it is not promoted).

    The rows are the lake's transactions of --from/--to with the behaviour features the job
    computes, labelled by --labels; or, with --generated, traffic generated and labelled by the
    producer. The latest 20 % by event time is held out: the threshold is the lowest score with
    precision >= 0.9 there, and precision, recall and PR-AUC are measured there.
    """
    from config.validators import duration_ms
    from jobs.history.lake import LakeError
    from jobs.history.replay import ReplayError
    from jobs.model import features
    from jobs.model.train import TrainingError, labels_from_truth, train
    from jobs.sql.render import risk_score_params
    from udfs.risk_score import params_from_json

    s = settings(config)
    if generated:
        if start or end or labels:
            fail("--generated takes no --from, --to or --labels", code=2)
    elif not (start and end and labels):
        fail("give --from, --to and --labels (or --generated)", code=2)
    since = until = None
    if not generated:
        assert start and end and labels
        since, until = utc_option(start, "--from"), utc_option(end, "--to")
        if until <= since:
            fail(f"--to ({end}) must be after --from ({start})", code=2)
        try:
            history = dt.timedelta(milliseconds=duration_ms(warmup))
        except ValueError as exc:
            fail(f"--warmup: {exc}", code=2)
        try:
            positives: Any = labels_from_truth(labels)
        except ValueError as exc:
            fail(f"{labels}: {exc}", code=2)
    try:
        with err_console.status("computing the behaviour features ..") as status:
            if generated:
                world = s.producer.model_copy(
                    update={
                        "population": population or s.producer.population,
                        "rate": rate or s.producer.rate,
                    }
                )
                s = s.model_copy(update={"producer": world})
                frame, positives = features.generated_features(s, seed, events)
                source = (
                    f"generated: seed {seed}, {events} events, {world.population} cards, "
                    f"{world.rate:g} per second"
                )
            else:
                frame = features.lake_features(s, since, until, warmup=history)
                source = f"lake {s.lake.path}, labels {labels}"
            if len(frame) == 0:
                fail("no transactions to train on in that range")
            status.update(f"training on {len(frame):,} transactions ..")
            model = train(
                frame, positives, params=params_from_json(risk_score_params(s)),
                trained_from=since, trained_to=until, source=source,
            )  # fmt: skip
    except (LakeError, ReplayError) as exc:
        fail(str(exc))
    except TrainingError as exc:
        fail(str(exc))
    store = _store(s)
    version = store.write(model.model_text(), model.meta)
    meta = store.meta(version)
    if json_out:
        print_json(meta)
        return
    print_table(_metric_rows(meta), ["figure", "value", "how"], f"model {version}")
    if meta["metrics"]["threshold_rule"] == "max_f1":
        err_console.print(
            "no score reaches precision 0.9 on the hold-out: the threshold is the score of the "
            "best F1",
            highlight=False,
        )
    console.print(
        f"stored as model {version} in {store.path(version)}; put it in force with "
        f"`fraudctl model promote {version}`",
        highlight=False,
    )


@model_app.command("list")
def list_models(config: ConfigOption = None, json_out: JsonOption = False) -> None:
    """Every stored version, its hold-out figures, and which one is in force.

    "In force" is risk_score.model_version as the running job applies it: the newest version
    of the rule in fraud_rules, or the config's; unknown when fraud_rules cannot be read.
    """
    from jobs.model.store import ModelStoreError

    s = settings(config)
    store = _store(s)
    promoted = _promoted_version(s)
    rows: list[dict[str, Any]] = [
        {"version": 0, "trained": "heuristic (udfs/risk_score.py)", "promoted": promoted == 0}
    ]
    for version in store.versions():
        try:
            meta = store.meta(version)
        except ModelStoreError as exc:
            rows.append({"version": version, "trained": str(exc), "promoted": promoted == version})
            continue
        m = meta.get("metrics") or {}
        rows.append(
            {
                "version": version,
                "trained": f"{meta.get('trained_from')} - {meta.get('trained_to')}",
                "rows": meta.get("rows"),
                "positives": meta.get("positives"),
                "precision": m.get("precision"),
                "recall": m.get("recall"),
                "pr_auc": m.get("pr_auc"),
                "created": meta.get("created_at"),
                "promoted": promoted == version,
            }
        )
    if json_out:
        print_json({"models_path": str(store.root), "promoted": promoted, "models": rows})
        return
    for row in rows:
        row["promoted"] = "in force" if row["promoted"] else ""
    known = (
        "" if promoted is not None else f"; in force: unknown, {s.kafka.topics.rules} unreadable"
    )
    print_table(
        rows,
        ["version", "trained", "rows", "positives", "precision", "recall", "pr_auc", "created",
         "promoted"],
        f"models in {store.root} (figures on each one's hold-out{known})",
    )  # fmt: skip


@model_app.command("show")
def show_model(
    version: VersionArgument, config: ConfigOption = None, json_out: JsonOption = False
) -> None:
    """One version's meta: training range, data digest, features, settings, hold-out figures."""
    from jobs.model.store import ModelStoreError

    s = settings(config)
    store = _store(s)
    try:
        if version and version not in store.versions():
            raise ModelStoreError(f"model {version}: no such version in {store.root}")
        meta = store.meta(version)
    except ModelStoreError as exc:
        fail(str(exc))
    if json_out:
        print_json(meta)
        return
    rows = []
    for key, value in meta.items():
        if isinstance(value, dict):
            rows += [{"key": f"{key}.{k}", "value": _text(v)} for k, v in value.items()]
        else:
            rows.append({"key": key, "value": _text(value)})
    print_table(rows, ["key", "value"], f"model {version}")


def _text(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return value


def _promote(s: Settings, version: int, with_threshold: bool, json_out: bool) -> None:
    """Validate `version`, then publish risk_score.model_version=version (and, with
    `with_threshold`, the model's threshold) as a rule change."""
    from confluent_kafka import KafkaException

    from config.rule_changes import RuleChangeError
    from jobs.model.store import ModelStoreError
    from jobs.rule_admin.versions import RuleChangeConflict, publish_change

    try:
        meta = _store(s).validate(version)
    except ModelStoreError as exc:
        fail(f"{exc}; nothing published")
    changes: dict[str, Any] = {KEY: version}
    if with_threshold:
        threshold = (meta.get("metrics") or {}).get("threshold")
        if threshold is None:
            fail(f"model {version} has no threshold of its own; nothing published", code=2)
        changes["threshold"] = round(float(threshold), 4)
    try:
        old, new = publish_change(s, RULE, changes)
    except RuleChangeConflict as exc:
        fail(str(exc), code=3)
    except RuleChangeError as exc:
        fail(str(exc), code=2)
    except (RuntimeError, TimeoutError, KafkaException) as exc:
        fail(f"{type(exc).__name__}: {exc}")
    if json_out:
        print_json(
            {
                "rule": RULE.upper(),
                "version": new.version,
                "effective_at": new.effective_at,
                "old": old.params,
                "new": new.params,
            }
        )
        return
    what = ", ".join(
        f"{k}: {old.params.get(k)} -> {v}" for k, v in new.params.items() if old.params.get(k) != v
    )
    console.print(
        f"RISK_SCORE version {new.version} ({what or 'no value changed'}) applies to "
        f"transactions from {new.effective_at}; it alerts at threshold {new.params['threshold']}",
        highlight=False,
    )


WithThreshold = Annotated[
    bool,
    typer.Option(
        "--with-threshold",
        help="Also set risk_score.threshold to the model's own (precision >= 0.9 on its "
        "hold-out) in the same change; without it the rule's threshold stays.",
    ),
]


@model_app.command("promote")
def promote(
    version: VersionArgument,
    with_threshold: WithThreshold = False,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Put a version in force in the running job (a rule change, no restart).

    The model is checked first: it loads, its features are the job's, it scores a sample row.
    Then risk_score.model_version=VERSION is published as `fraudctl rules set` publishes a
    change: the job applies it to transactions from one second later (event time). A missing
    or broken model is refused and nothing is published.
    """
    _promote(settings(config), version, with_threshold, json_out)


@model_app.command("rollback")
def rollback(
    with_threshold: WithThreshold = False,
    config: ConfigOption = None,
    json_out: JsonOption = False,
) -> None:
    """Promote again the model version in force before the current one.

    The versions are the risk_score rule's in fraud_rules (and the config's, version 0).
    Rolling back twice returns to where you started.
    """
    from confluent_kafka import KafkaException

    from jobs.rule_admin.versions import current_history

    s = settings(config)
    try:
        history = current_history(s)
    except (RuntimeError, TimeoutError, KafkaException) as exc:
        fail(f"reading {s.kafka.topics.rules}: {type(exc).__name__}: {exc}")
    versions = history.versions(RULE)
    previous = previous_model_version(versions)
    if previous is None:
        fail(
            f"nothing to roll back to: every risk_score version in {s.kafka.topics.rules} (and "
            f"the config) has model_version {versions[-1].params.get(KEY)}"
        )
    _promote(s, previous, with_threshold, json_out)


def register(app: typer.Typer) -> None:
    """Add `model ...` to `fraudctl`."""
    app.add_typer(model_app, name="model")
