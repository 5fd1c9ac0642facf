"""The transaction producer behind `fraudctl produce`.

Layers, each testable alone:

- `places`      real US cities with coordinates, haversine distance, travel partners
- `population`  cards/users deterministic from the seed (home city, devices, habits)
- `scenarios`   the labelled fraud scenarios and their ground truth (the behavioural ones,
                account_takeover and account_drain, only a model of the card's history catches)
- `lookalikes`  legit look-alikes of behavioural fraud (travel, habitual_big_online, new_phone),
                labelled legit in the truth
- `invalid`     invalid records of every kind docs/contract.md lists, labelled in the truth
- `generator`   the pure stream: seeded RNG + simulated clock -> (key, value bytes, truth);
                `generator.labelled_stream(count, seed, token_key, ...)` gives a labelled stream
                for training without Kafka: (transactions as sent, parsed; truth records)
- `sinks`       JSONL file, confluent-kafka (default) or kafka-python
- `runner`      pacing, progress, Ctrl-C, summary;  `cli`  the `produce` verb

Clock: event time starts at `--start-time` (default: now) and advances `--speedup` times
faster than wall time; `--rate` is events per wall second, so the stream holds
`rate / speedup` events per second of event time. Examples:

    fraudctl produce --duration 5min                                   # real time, 50/s
    fraudctl produce --start-time 2026-11-21T08:00:00Z --speedup 60 \\
        --rate 3000 --count 500000 --truth truth.jsonl                  # 1 h of traffic/min
    fraudctl produce --count 100000 --start-time 2026-11-21T00:00:00Z \\
        --no-throttle --to-file tx.jsonl --bad-records 0.01            # a file, fast

Behavioural fraud and look-alikes need cards with a history (3 purchases) and, for account
takeover and travel, a journey of hours: give a run hours of event time (`--speedup`).
"""
