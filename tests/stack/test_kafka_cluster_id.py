"""The KRaft cluster id handed to kafka-storage format (pure logic)."""

from __future__ import annotations

import base64
import uuid

import pytest

from stack import services


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch):
    # first draw encodes to "-" + ... (argparse would take it for an option), second is fine
    dash = uuid.UUID(bytes=b"\xf8" + bytes(15))
    ok = uuid.UUID(bytes=b"\x00" + bytes(15))
    assert base64.urlsafe_b64encode(dash.bytes).decode().startswith("-")
    draws = iter([dash, ok])
    monkeypatch.setattr(services.uuid, "uuid4", lambda: next(draws))
    cluster_id = services.kafka_cluster_id()
    assert not cluster_id.startswith("-")
    assert len(cluster_id) == 22
