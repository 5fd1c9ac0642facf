"""The benchmark harness: runs every benchmark on the local stack and writes RESULTS.md.

    .venv/bin/python -m benchmarks.run            # everything (about 45 minutes)
    .venv/bin/python -m benchmarks.run --quick    # smaller sizes, for a smoke run
    .venv/bin/python -m benchmarks.run --only producer,sink

Each step is one of the scripts in this folder, run as its own process; its full output is
kept in benchmarks/results/<step>.log and its final JSON summary feeds the markdown table in
benchmarks/results/RESULTS.md (not committed), together with the machine's cores and memory and
the exact commands. These are measurements, not tests: they depend on the machine and on what
else it runs. The curated figures, with their targets and spread, are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS


@dataclass
class Step:
    name: str
    args: list[str]
    quick_args: list[str]

    def command(self, quick: bool) -> list[str]:
        return [sys.executable, "-m", *(self.quick_args if quick else self.args)]


STEPS = [
    Step("producer", ["benchmarks.producer_throughput", "--events", "1000000"],
         ["benchmarks.producer_throughput", "--events", "100000"]),
    Step("sink", ["benchmarks.sink_throughput", "--count", "50000"],
         ["benchmarks.sink_throughput", "--count", "10000"]),
    Step("replay", ["benchmarks.job_replay", "throughput", "--events", "1000000"],
         ["benchmarks.job_replay", "throughput", "--events", "100000"]),
    Step("latency-100", ["benchmarks.job_replay", "latency", "--rate", "100", "--seconds", "1200"],
         ["benchmarks.job_replay", "latency", "--rate", "100", "--seconds", "45"]),
    Step("latency-2k", ["benchmarks.job_replay", "latency", "--rate", "2000", "--seconds", "120"],
         ["benchmarks.job_replay", "latency", "--rate", "2000", "--seconds", "45"]),
    Step("latency-2k-exactly-once",
         ["benchmarks.job_replay", "latency", "--rate", "2000", "--seconds", "120",
          "--delivery", "exactly-once"],
         ["benchmarks.job_replay", "latency", "--rate", "2000", "--seconds", "45",
          "--delivery", "exactly-once"]),
    Step("latency-10k", ["benchmarks.job_replay", "latency", "--rate", "10000", "--seconds", "120"],
         ["benchmarks.job_replay", "latency", "--rate", "10000", "--seconds", "45"]),
    Step("memory", ["benchmarks.memory_soak", "--rate", "1000", "--minutes", "10",
                    "--state-ttl", "5 min"],
         ["benchmarks.memory_soak", "--rate", "1000", "--minutes", "2", "--sample-s", "15"]),
]  # fmt: skip


def last_json(text: str) -> Any:
    """The last JSON object a script printed (a one-line or an indented multi-line dump)."""
    lines = text.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("{"):
            for j in range(len(lines), i, -1):
                try:
                    return json.loads("\n".join(lines[i:j]))
                except json.JSONDecodeError:
                    continue
    return None


def machine() -> str:
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), "?",
    )  # fmt: skip
    return f"{os.cpu_count()} cores ({cpu}), {mem_kb / 2**20:.0f} GiB memory"


def summarize(name: str, data: Any) -> str:
    """One human line per step from its JSON summary."""
    if data is None:
        return "no summary printed (see the log)"
    if name == "producer":
        return "; ".join(
            f"{r.get('client')}{' generate+send' if r.get('mode') == 'generate+send' else ''}: "
            f"{r.get('events_per_s', 0):,} events/s"
            for r in data.get("results", [])
        )
    if name == "sink":
        return ", ".join(f"{k}: {v:,} docs/s" for k, v in data.items() if k.endswith("docs_per_s"))
    if name == "replay":
        keys = [k for k in data if k.endswith("eps") or "events_per_s" in k]
        return ", ".join(f"{k}: {data[k]:,}" for k in keys) or json.dumps(data)[:200]
    if name.startswith("latency"):
        kafka, mongo = data.get("to_kafka", {}), data.get("to_mongo", {})
        rules = "; ".join(
            f"{rule} {v['p50_s']}/{v['p99_s']} s"
            + (f" (Mongo {m['p50_s']}/{m['p99_s']})" if (m := mongo["per_rule"].get(rule)) else "")
            for rule, v in kafka.get("per_rule", {}).items()
        )
        a = kafka.get("all_rules") or {}
        return (f"{data.get('rate_eps')} events/s, {data.get('delivery_guarantee')}: "
                f"p50/p99 to Kafka {a.get('p50_s')}/{a.get('p99_s')} s over {a.get('n')} alerts; "
                f"per rule {rules}")  # fmt: skip
    if name == "memory":
        tm, jm, st = data.get("tm_rss", {}), data.get("jm_rss", {}), data.get("state", {})
        return (
            f"TaskManager RSS {tm.get('first_half_mb')} -> {tm.get('second_half_mb')} MB "
            f"(max {tm.get('max_mb')}); JobManager RSS {jm.get('first_half_mb')} -> "
            f"{jm.get('second_half_mb')} MB; checkpointed state {st.get('first_half_mb')} -> "
            f"{st.get('second_half_mb')} MB"
        )
    return json.dumps(data)[:300]


def write_summary(step: Step, quick: bool, line: str, at: float) -> None:
    """Keep a step's result line for RESULTS.md in results/<step>.summary.json."""
    row = {
        "command": " ".join(["python -m", *step.command(quick)[2:]]),
        "result": line,
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at)),
    }
    (RESULTS / f"{step.name}.summary.json").write_text(json.dumps(row, indent=2) + "\n")


def results_markdown(quick: bool) -> str:
    """RESULTS.md from the newest summary of every step (a step run alone with --only
    replaces its own row and keeps the others)."""
    rows = []
    for step in STEPS:
        f = RESULTS / f"{step.name}.summary.json"
        if f.exists():
            r = json.loads(f.read_text())
            rows.append(f"| {step.name} | `{r['command']}` | {r['result']} | {r['measured']} |\n")
    return (
        "# Benchmark results\n\n"
        f"Measured on {machine()}, with the whole local stack running "
        f"(`python -m benchmarks.run{' --quick' if quick else ''}`).\n\n"
        "| step | command | result | measured |\n|---|---|---|---|\n" + "".join(rows)
    )


def build_parser() -> argparse.ArgumentParser:
    """The harness's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated step names: " + ", ".join(s.name for s in STEPS),
    )
    parser.add_argument(
        "--from-logs",
        action="store_true",
        help="run nothing: summarise each step's last log (results/<step>.log) into RESULTS.md",
    )
    return parser


def main() -> None:
    args = build_parser().parse_args()
    only = {s for s in args.only.split(",") if s}
    steps = [s for s in STEPS if not only or s.name in only]
    RESULTS.mkdir(exist_ok=True)
    if args.from_logs:
        steps_run, steps = steps, []
        for step in steps_run:
            log = RESULTS / f"{step.name}.log"
            if log.exists():
                line = summarize(step.name, last_json(log.read_text()))
                write_summary(step, args.quick, line, log.stat().st_mtime)
    for step in steps:
        # a step that overloaded the stack (a TaskManager lost to GC) must not fail the next
        # one: `stack up` is a no-op when all is healthy and restarts what is not
        subprocess.run([sys.executable, "-m", "fraudctl.app", "stack", "up"], check=False,
                       capture_output=True)  # fmt: skip
        cmd = step.command(args.quick)
        print(f"== {step.name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - t0
        (RESULTS / f"{step.name}.log").write_text(proc.stdout + proc.stderr)
        data = last_json(proc.stdout)
        line = summarize(step.name, data) if proc.returncode == 0 else (
            f"FAILED (exit {proc.returncode}); see benchmarks/results/{step.name}.log")  # fmt: skip
        print(f"   {line}  [{elapsed:.0f} s]", flush=True)
        write_summary(step, args.quick, line, time.time())
    out = RESULTS / "RESULTS.md"
    out.write_text(results_markdown(args.quick))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
