"""`fraudctl`: the one console script. Each package registers its own verbs:

- `stack ...`                      stack/cli.py      local Kafka, Flink, FerretDB
- `produce`                        producer/cli.py   transaction generator
- `render | explain | submit | jobs | stop | dlq`  jobs/commands.py  the Flink SQL job
- `sink | query ... | evaluate`    mongo_sink/cli.py Kafka -> MongoDB and the analytics
- `notify`                         notify/cli.py     alerts to webhooks and e-mail, once each
- `rules list | set | history`     fraudctl/rules.py run-time rule parameters, changed live
- `demo`                           jobs/demo.py      the whole pipeline end to end
"""

from __future__ import annotations

import typer

import jobs.commands
import jobs.demo
import mongo_sink.cli
import notify.cli
import producer.cli
import stack.cli
from fraudctl import rules

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
    mongo_sink.cli,
    notify.cli,
    rules,
    jobs.demo,
):
    module.register(app)


if __name__ == "__main__":
    app()
