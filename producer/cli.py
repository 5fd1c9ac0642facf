"""`fraudctl produce`: labelled card transactions to Kafka `transactions` (or a JSONL file)."""

from __future__ import annotations

import functools
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from config.validators import duration_ms
from fraudctl.cli_common import ConfigOption, JsonOption, err_console, fail, print_json, print_table
from fraudctl.cli_common import settings as load_cli_settings
from producer.generator import GeneratorOptions, TransactionGenerator
from producer.lookalikes import LOOKALIKES
from producer.population import build_population
from producer.runner import RunOptions, RunResult, run
from producer.scenarios import SCENARIOS
from producer.sinks import CLIENTS, FileSink, SinkError, TruthFile, open_kafka_sink

_ENV = "env FRAUD_PRODUCER__{}"


def parse_start_time(value: str) -> int:
    """Epoch ms of an ISO-8601 time ('2026-11-21T22:00:00Z', offset or naive UTC)."""
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(
            f"{value!r} is not an ISO-8601 time such as 2026-11-21T22:00:00Z"
        ) from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def parse_duration_s(value: str) -> float:
    """Seconds in '90', '90 s', '5 min', '1 h'."""
    v = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", v):
        return float(v)
    try:
        return duration_ms(v) / 1000
    except ValueError as exc:
        raise typer.BadParameter(
            f"{value!r} is not a duration: seconds, or a number and ms/s/min/h/d"
        ) from exc


def parse_weights(items: list[str]) -> dict[str, float]:
    """'name=weight' pairs over the default weight 1.0 of every scenario."""
    weights = dict.fromkeys(SCENARIOS, 1.0)
    for item in items:
        name, sep, w = item.partition("=")
        if not sep or name not in SCENARIOS:
            raise typer.BadParameter(
                f"{item!r}: use NAME=WEIGHT with NAME one of {', '.join(SCENARIOS)}"
            )
        try:
            weights[name] = float(w)
        except ValueError as exc:
            raise typer.BadParameter(f"{item!r}: weight must be a number") from exc
        if weights[name] < 0:
            raise typer.BadParameter(f"{item!r}: weight must be >= 0")
    return weights


def _horizon(
    start_ms: int,
    events_per_s: float,
    count: int | None,
    duration_s: float | None,
    speedup: float,
    throttle: bool,
) -> int | None:
    """The last event time of a run with a known end, so no scenario starts that cannot end."""
    ends = []
    if count is not None:
        ends.append(start_ms + int(count * 1000 / events_per_s))
    if duration_s is not None and throttle:
        ends.append(start_ms + int(duration_s * speedup * 1000))
    return min(ends) if ends else None


def print_summary(res: RunResult, destination: str) -> None:
    """The final summary: totals, then scenarios and invalid kinds."""
    d = res.as_dict()
    rows = [
        {"metric": "destination", "value": destination},
        {"metric": "sent", "value": d["sent"]},
        {"metric": "delivered", "value": d["delivered"]},
        {"metric": "failed", "value": d["failed"] + d["undelivered"]},
        {"metric": "elapsed", "value": f"{d['elapsed_s']:.1f} s"},
        {"metric": "achieved rate", "value": f"{d['achieved_rate']:.0f} events/s"},
        {"metric": "event time", "value": f"{d['first_event_time']} .. {d['last_event_time']}"},
        {
            "metric": "normal / fraud / look-alike / invalid",
            "value": f"{d['normal']} / {d['fraud']} / {d['lookalike']} / {d['invalid']}",
        },
        {"metric": "truth records", "value": d["truth_records"]},
    ]
    if res.interrupted:
        rows.append({"metric": "interrupted", "value": "yes (Ctrl-C): buffered events flushed"})
    if res.truncated:
        cut = sum(res.truncated.values())
        rows.append({"metric": "scenarios cut short", "value": f"{cut} (truth: complete=false)"})
    if res.error:
        rows.append({"metric": "error", "value": res.error})
    print_table(rows, ["metric", "value"], title="produce summary")
    scen = [
        {
            "scenario": name,
            "instances": res.scenarios.get(name, 0),
            "events": res.fraud_events.get(name, 0),
            "expected rule": spec.expected_rule,
        }
        for name, spec in SCENARIOS.items()
    ]
    print_table(scen, ["scenario", "expected rule", "instances", "events"], title="fraud scenarios")
    if res.lookalikes:
        looks = [
            {"look-alike": name, "instances": res.lookalikes.get(name, 0)} for name in LOOKALIKES
        ]
        print_table(looks, ["look-alike", "instances"], title="legit look-alikes (not fraud)")
    if res.invalid:
        inv = [{"invalid kind": k, "records": v} for k, v in sorted(res.invalid.items())]
        print_table(inv, ["invalid kind", "records"], title="invalid records")


def produce(
    config: ConfigOption = None,
    count: Annotated[
        int | None,
        typer.Option(
            "--count",
            "-n",
            min=1,
            help="Stop after this many events. Only scenarios that can finish by then start "
            "(impossible travel needs 15 min of event time, account takeover and travel up to "
            "5 h: use --speedup for short runs).",
        ),
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration",
            help="Stop after this wall time: '60', '30 s', '5 min' (scenarios as with --count).",
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            min=0.001,
            help=f"Events per wall-clock second ({_ENV.format('RATE')}).",
        ),
    ] = None,
    throttle: Annotated[
        bool,
        typer.Option(
            "--throttle/--no-throttle",
            help="--no-throttle: send as fast as possible (needs --start-time); "
            "event times still follow --rate and --speedup.",
        ),
    ] = True,
    start_time: Annotated[
        str | None,
        typer.Option(
            "--start-time",
            help="Simulated clock: first event time (ISO-8601). Default: real time, now.",
        ),
    ] = None,
    speedup: Annotated[
        float | None,
        typer.Option(
            "--speedup",
            min=0.001,
            help=f"Sim seconds per wall second, with --start-time ({_ENV.format('SPEEDUP')}).",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help=f"Seed of population and stream ({_ENV.format('SEED')})."),
    ] = None,
    population: Annotated[
        int | None,
        typer.Option(
            "--population", min=1, help=f"Number of cards/users ({_ENV.format('POPULATION')})."
        ),
    ] = None,
    fraud_rate: Annotated[
        float | None,
        typer.Option(
            "--fraud-rate",
            min=0.0,
            max=0.99,
            help=f"Share of events that belong to fraud scenarios ({_ENV.format('FRAUD_RATE')}).",
        ),
    ] = None,
    lookalike_rate: Annotated[
        float | None,
        typer.Option(
            "--lookalike-rate",
            min=0.0,
            max=0.5,
            help="Share of events that are legit look-alikes of behavioural fraud: "
            f"{', '.join(LOOKALIKES)}; labelled legit in the truth "
            f"({_ENV.format('LOOKALIKE_RATE')}).",
        ),
    ] = None,
    scenario_weight: Annotated[
        list[str] | None,
        typer.Option(
            "--scenario-weight",
            "-w",
            help=f"NAME=WEIGHT, repeatable; names: {', '.join(SCENARIOS)}.",
        ),
    ] = None,
    bad_records: Annotated[
        float | None,
        typer.Option(
            "--bad-records",
            min=0.0,
            max=0.5,
            help=f"Share of invalid records, all kinds in turn ({_ENV.format('BAD_RECORDS')}).",
        ),
    ] = None,
    out_of_order_ms: Annotated[
        int | None,
        typer.Option(
            "--out-of-order-ms",
            min=0,
            help=f"Move event times back by up to N ms ({_ENV.format('OUT_OF_ORDER_MS')}).",
        ),
    ] = None,
    truth: Annotated[
        Path | None, typer.Option("--truth", help="Write the ground truth as JSONL to PATH.")
    ] = None,
    truth_topic: Annotated[
        bool | None,
        typer.Option(
            "--truth-topic/--no-truth-topic",
            help=f"Also send the truth to the truth topic ({_ENV.format('TRUTH_TO_TOPIC')}).",
        ),
    ] = None,
    to_file: Annotated[
        Path | None,
        typer.Option("--to-file", help="Write transactions as JSONL to PATH instead of Kafka."),
    ] = None,
    client: Annotated[
        str | None,
        typer.Option(
            "--client", help=f"Kafka client: {' or '.join(CLIENTS)} ({_ENV.format('CLIENT')})."
        ),
    ] = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(
            "--bootstrap-servers", help="Kafka HOST:PORT (env FRAUD_KAFKA__BOOTSTRAP_SERVERS)."
        ),
    ] = None,
    topic: Annotated[
        str | None,
        typer.Option("--topic", help="Target topic (env FRAUD_KAFKA__TOPICS__TRANSACTIONS)."),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress", help="Progress bar (default: when stderr is a terminal)."
        ),
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Send realistic card transactions with labelled fraud scenarios to Kafka `transactions`.

    Same --seed and --start-time give byte-identical output. Ctrl-C flushes and prints the summary.
    """
    kafka_over: dict[str, object] = {}
    if bootstrap_servers:
        kafka_over["bootstrap_servers"] = bootstrap_servers
    prod_over = {
        k: v
        for k, v in {
            "rate": rate,
            "speedup": speedup,
            "seed": seed,
            "population": population,
            "fraud_rate": fraud_rate,
            "lookalike_rate": lookalike_rate,
            "bad_records": bad_records,
            "out_of_order_ms": out_of_order_ms,
            "truth_to_topic": truth_topic,
            "client": client,
            "scenario_weights": parse_weights(scenario_weight) if scenario_weight else None,
        }.items()
        if v is not None
    }
    if topic:
        base = load_cli_settings(config)
        kafka_over["topics"] = {**base.kafka.topics.model_dump(), "transactions": topic}
    overrides: dict[str, dict[str, object]] = {"producer": prod_over}
    if kafka_over:
        overrides["kafka"] = kafka_over
    s = load_cli_settings(config, **overrides)
    p = s.producer

    if start_time is None and (speedup is not None or not throttle):
        fail("--speedup and --no-throttle need a simulated clock: add --start-time", code=2)
    duration_s = parse_duration_s(duration) if duration else None
    sim_start_ms = parse_start_time(start_time) if start_time else None
    eff_speedup = p.speedup if start_time else 1.0
    if count is None and duration_s is None and not throttle:
        fail("--no-throttle needs --count or --duration", code=2)

    send_truth_topic = bool(p.truth_to_topic) and to_file is None
    try:
        if to_file is not None:
            sink = FileSink(to_file)
            destination = str(to_file)
        else:
            sink = open_kafka_sink(
                p.client,
                s.kafka.bootstrap_servers,
                s.kafka.topics.transactions,
                truth_topic=s.kafka.topics.truth if send_truth_topic else None,
                partitions=s.kafka.topic_partitions(),
                linger_ms=p.linger_ms,
                batch_size=p.batch_size,
                compression=None if p.compression == "none" else p.compression,
                delivery_timeout_ms=p.delivery_timeout_ms,
                connect_timeout_s=p.connect_timeout_s,
            )
            destination = f"kafka {s.kafka.bootstrap_servers} topic {s.kafka.topics.transactions}"
    except SinkError as exc:
        fail(str(exc))
    pop = build_population(p.seed, p.population)
    start_ms = sim_start_ms if sim_start_ms is not None else int(time.time() * 1000)
    gen = TransactionGenerator(
        pop,
        GeneratorOptions(
            seed=p.seed,
            start_ms=start_ms,
            events_per_second=p.rate / eff_speedup,
            fraud_rate=p.fraud_rate,
            lookalike_rate=p.lookalike_rate,
            bad_records=p.bad_records,
            out_of_order_ms=p.out_of_order_ms,
            scenario_weights=p.scenario_weights,
            horizon_ms=_horizon(
                start_ms, p.rate / eff_speedup, count, duration_s, eff_speedup, throttle
            ),
        ),
        s.card_token_secret(),
    )
    intensity = p.rate / eff_speedup
    if intensity > 0.8 * gen.capacity_eps():
        err_console.print(
            f"[yellow]warning:[/] {intensity:.0f} events per second of event time is more than "
            f"{p.population} cards sustain without tripping VELOCITY (about "
            f"{gen.capacity_eps():.0f}/s); raise --population or --speedup, or lower --rate."
        )

    truth_file = TruthFile(truth) if truth else None
    show_progress = progress if progress is not None else (sys.stderr.isatty() and not json_out)
    res = run(
        gen,
        sink,
        RunOptions(
            rate=p.rate,
            throttle=throttle,
            count=count,
            duration_s=duration_s,
            progress=show_progress,
            truth_to_topic=send_truth_topic,
        ),
        truth_file=truth_file,
        console=err_console,
    )
    if json_out:
        print_json({"destination": destination, **res.as_dict()})
    else:
        print_summary(res, destination)
    if res.interrupted:
        raise typer.Exit(130)
    if res.error or res.failed or res.undelivered:
        fail(res.error or f"{res.failed + res.undelivered} events were not delivered")


def register(app: typer.Typer) -> None:
    """Add `produce` to `fraudctl`."""

    @functools.wraps(produce)
    def produce_command(*args: object, **kwargs: object) -> None:
        try:
            produce(*args, **kwargs)
        except KeyboardInterrupt:
            # Ctrl-C before the first event (connecting, building the population)
            err_console.print("interrupted before sending anything")
            raise typer.Exit(130) from None

    app.command("produce")(produce_command)
