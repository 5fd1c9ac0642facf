"""`fraudctl`: the one console script. Each package registers its own verbs:

- `stack ...` (stack/cli.py): the local Kafka, Flink and FerretDB
- `produce` (producer/cli.py): the transaction generator
- `render`, `explain`, `submit`, `jobs`, `stop`, `upgrade`, `dlq` (jobs/commands.py): the job
- `rules list | set | history` (jobs/rule_admin/cli.py): run-time rule parameters, changed live
- `backtest`, `lake` (jobs/history/cli.py): a rule change tried on the lake's history
- `model train | list | show | promote | rollback` (jobs/model/cli.py): the learned risk model
- `sink`, `query ...`, `evaluate` (mongo_sink/cli.py): Kafka -> MongoDB and the analytics
- `notify` (notify/cli.py): alerts to webhooks and e-mail, once each
- `top` (monitoring/cli.py): the on-call figures live from Prometheus
- `demo` (jobs/demo.py): the whole pipeline end to end

The rest of this package is what several packages share: CLI helpers (cli_common), Kafka topics
(topics), the dead-letter topic (dead_letters), MongoDB access (mongo), metrics (metrics).
"""

from __future__ import annotations

import typer

import jobs.commands
import jobs.demo
import jobs.history.cli
import jobs.model.cli
import jobs.rule_admin.cli
import mongo_sink.cli
import monitoring.cli
import notify.cli
import producer.cli
import stack.cli

app = typer.Typer(
    name="fraudctl",
    help=(
        "Real-time card-fraud detection on Apache Flink SQL. Every verb takes --config PATH "
        "(env FRAUD_CONFIG) for the YAML config; FRAUD_<SECTION>__<KEY> overrides a key."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for module in (
    stack.cli,
    producer.cli,
    jobs.commands,
    jobs.rule_admin.cli,
    jobs.history.cli,
    jobs.model.cli,
    mongo_sink.cli,
    notify.cli,
    monitoring.cli,
    jobs.demo,
):
    module.register(app)


if __name__ == "__main__":
    app()
