"""The job verbs without a cluster: render output, bad config, unreachable JobManager."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudctl.app import app
from jobs.sql.render import TARGET_DIR

runner = CliRunner()


def test_render_prints_the_script_and_writes_target_job_sql():
    result = runner.invoke(app, ["render"])
    assert result.exit_code == 0, result.output
    assert "EXECUTE STATEMENT SET" in result.stdout
    written = (TARGET_DIR / "job.sql").read_text()
    assert written in result.stdout


def test_render_refuses_an_injected_topic_with_a_clear_error(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text('kafka:\n  topics:\n    transactions: "x\'); DROP TABLE t; --"\n')
    result = runner.invoke(app, ["render", "--config", str(bad)])
    assert result.exit_code == 2
    assert "kafka.topics.transactions" in result.output
    assert "DROP TABLE" not in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["jobs", "--jobmanager", "127.0.0.1:1"],
        ["stop", "0123456789abcdef", "--jobmanager", "127.0.0.1:1"],
        ["submit", "--jobmanager", "127.0.0.1:1"],
    ],
)
def test_an_unreachable_jobmanager_is_a_clear_error(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "unreachable" in result.output
