"""`fraudctl notify --check` and the refusals that need no running stack."""

from __future__ import annotations

from typer.testing import CliRunner

from fraudctl.app import app

runner = CliRunner()
SECRET_URL = "https://hooks.slack.com/services/T000/B000/S3CR3T"


def test_check_lists_the_destinations_with_urls_masked() -> None:
    env = {
        "FRAUD_NOTIFY_WEBHOOK_URLS": f"oncall={SECRET_URL}",
        "FRAUD_NOTIFY__SMTP__HOST": "mail.example",
        "FRAUD_NOTIFY__SMTP__FROM_ADDRESS": "fraud@example.com",
        "FRAUD_NOTIFY__SMTP__TO": '["oncall@example.com"]',
    }
    result = runner.invoke(app, ["notify", "--check", "--min-severity", "high"], env=env)
    assert result.exit_code == 0, result.output
    assert "oncall" in result.output and "https://hooks.slack.com/…" in result.output
    assert "mail.example:587" in result.output and "min severity HIGH" in result.output
    assert "S3CR3T" not in result.output and "T000" not in result.output


def test_no_destination_is_a_clear_error() -> None:
    result = runner.invoke(app, ["notify"], env={"FRAUD_NOTIFY_WEBHOOK_URLS": ""})
    assert result.exit_code == 2
    assert "no destinations" in result.output


def test_a_malformed_url_is_refused_without_echoing_it() -> None:
    env = {"FRAUD_NOTIFY_WEBHOOK_URLS": "ftp://host/S3CR3T"}
    result = runner.invoke(app, ["notify", "--check"], env=env)
    assert result.exit_code == 2
    assert "entry 1 is not an http(s) URL" in result.output and "S3CR3T" not in result.output


def test_a_bad_severity_names_the_key() -> None:
    result = runner.invoke(app, ["notify", "--check", "--min-severity", "urgent"])
    assert result.exit_code == 2 and "notify.min_severity" in result.output
