"""`fraudctl sink` serves its Prometheus metrics when mongo.metrics_port is set."""

from __future__ import annotations

import socket

import pytest
import requests

from tests.mongo_sink.conftest import Env, make_alert, make_stat, sink_thread
from tests.polling import wait_until

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_documents_written_per_collection_and_consumer_lag(sink_env: Env) -> None:
    port = _free_port()
    m = sink_env.settings.mongo
    settings = sink_env.settings.model_copy(
        update={"mongo": m.model_copy(update={"metrics_port": port})}
    )
    sink_env.send_alerts([make_alert(i) for i in range(5)])
    sink_env.send_stats([make_stat(i) for i in range(3)])
    wanted = [
        f'fraud_sink_documents_written_total{{collection="{m.alerts_collection}"}} 5.0',
        f'fraud_sink_documents_written_total{{collection="{m.window_stats_collection}"}} 3.0',
        f'fraud_sink_documents_written_total{{collection="{m.dead_letters_collection}"}} 0.0',
        f'fraud_sink_consumer_lag{{topic="{sink_env.alerts_topic}"}} 0.0',
        f'fraud_sink_consumer_lag{{topic="{sink_env.stats_topic}"}} 0.0',
    ]

    def scraped() -> str | None:
        try:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except requests.ConnectionError:  # not serving yet
            return None
        return text if all(w in text for w in wanted) else None

    with sink_thread(settings):
        wait_until(scraped, 40, "the sink's metrics")
