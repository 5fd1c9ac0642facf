"""The packages import downwards only: what several of them share sits a floor below them.

    config                       the typed settings and the rules' declarations
    udfs                         the job's Python functions (the TaskManagers import them)
    fraudctl (but app.py)        what the packages share: CLI helpers, Kafka topics, MongoDB
    producer, stack, mongo_sink, notify, monitoring, jobs
    fraudctl/app.py              the console script, which registers every package's verbs

Beside its own package and the floors below, a package may import only what ALSO lists.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from config.stack import PROJECT_ROOT

FLOORS = {
    "config": {"config"},
    "udfs": {"config", "udfs"},
    "fraudctl": {"config", "udfs", "fraudctl"},
}
TOP = {"producer", "stack", "mongo_sink", "notify", "monitoring", "jobs"}
PACKAGES = set(FLOORS) | TOP
# the job needs the stack's jars (submit) and the demo starts the stack; a model trained on
# generated traffic needs the producer's generator (jobs/model/features.py)
ALSO = {"jobs": {"stack", "producer"}}


def _allowed(package: str) -> set[str]:
    if package in FLOORS:
        return FLOORS[package]
    return FLOORS["fraudctl"] | {package} | ALSO.get(package, set())


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & PACKAGES


MODULES = sorted(
    p
    for package in PACKAGES
    for p in (PROJECT_ROOT / package).rglob("*.py")
    if p.relative_to(PROJECT_ROOT) != Path("fraudctl/app.py")
)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_a_module_imports_only_its_own_package_and_the_floors_below(path):
    package = path.relative_to(PROJECT_ROOT).parts[0]
    upward = _imports(path) - _allowed(package)
    assert not upward, f"{package} imports {sorted(upward)}"
