"""Every benchmark script explains each of its options in `--help` (their figures are quoted
with the command that produced them, so a reader has to know what each option does)."""

from __future__ import annotations

import argparse

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
