"""The benchmarks' command lines: their figures are quoted with the command that produced them,
so every option is explained by `--help`, and the command a result records runs the same
benchmark again."""

from __future__ import annotations

import argparse
import shlex

import pytest

from benchmarks import job_replay, memory_soak, producer_throughput, run, sink_throughput


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser and each of its sub-commands' parsers."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(_parsers(sub))
    return found


@pytest.mark.parametrize(
    "module", [job_replay, memory_soak, producer_throughput, run, sink_throughput]
)
def test_every_option_of_every_benchmark_has_help(module):
    parser = module.build_parser()
    assert parser.description, f"{parser.prog} has no description"
    missing = [
        f"{p.prog} {'/'.join(a.option_strings) or a.dest}"
        for p in _parsers(parser)
        for a in p._actions
        if not isinstance(a, argparse._HelpAction) and not (a.help and a.help.strip())
    ]
    assert missing == []


def test_job_replay_help_names_each_mode():
    text = job_replay.build_parser().format_help()
    for mode in ("throughput", "latency", "rule-change"):
        assert mode in text


@pytest.mark.parametrize(
    "argv",
    [
        ["throughput", "--events", "500000", "--no-ceiling", "--checkpoint", "30 s"],
        ["throughput"],
        ["latency", "--rate", "2000", "--warmup", "90", "--seconds", "150", "--keep"],
        [
            "latency",
            "--risk-score-threshold",
            "0.5",
            "--slide",
            "30 s",
            "--delivery",
            "exactly-once",
        ],
        ["rule-change", "--state-backend", "rocksdb"],
    ],
)
def test_the_recorded_command_runs_the_same_benchmark_again(argv):
    """A figure is quoted with its command: the one a result records parses back to the same
    options (flags only when set, no `None` or empty values that would not parse)."""
    parser = job_replay.build_parser()
    args = parser.parse_args(argv)
    command = job_replay.command_line(args)
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "benchmarks.job_replay"]
    assert "None" not in words and "" not in words and "False" not in words
    assert vars(parser.parse_args(words[3:])) == vars(args)
