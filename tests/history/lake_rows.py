"""A lake as the job writes it (sql_templates/sinks/lake.sql.j2), made with pyarrow: Hive-style
`transactions/dt=/hr=/` Parquet of hand-written rows, for the history tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("card_token", pa.string()),
        ("card_last4", pa.string()),
        ("user_id", pa.string()),
        ("device_id", pa.string()),
        ("amount", pa.decimal128(18, 2)),
        ("currency", pa.string()),
        ("merchant", pa.string()),
        ("merchant_category", pa.string()),
        ("channel", pa.string()),
        ("city", pa.string()),
        ("state", pa.string()),
        ("lat", pa.float64()),
        ("lon", pa.float64()),
        ("risk_score", pa.float64()),
        ("late", pa.bool_()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("event_time", pa.timestamp("ms")),
        ("dt", pa.string()),
        ("hr", pa.string()),
    ]
)


def row(
    transaction_id: str, card: str, at: dt.datetime, amount: str, late: bool = False
) -> dict[str, Any]:
    """One accepted transaction of `card` at `at` (UTC), in Oakland, at the card's own device."""
    naive = at.astimezone(dt.UTC).replace(tzinfo=None)
    return {
        "transaction_id": transaction_id,
        "card_token": f"tok-{card}",
        "card_last4": "4242",
        "user_id": f"user-{card}",
        "device_id": f"device-{card}",
        "amount": Decimal(amount),
        "currency": "USD",
        "merchant": "Corner Shop",
        "merchant_category": "grocery",
        "channel": "pos",
        "city": "Oakland",
        "state": "CA",
        "lat": 37.80,
        "lon": -122.27,
        "risk_score": 0.1,
        "late": late,
        "kafka_partition": 0,
        "kafka_offset": int(transaction_id.rsplit("-", 1)[-1]),
        "event_time": naive,
        "dt": naive.strftime("%Y-%m-%d"),
        "hr": naive.strftime("%H"),
    }


def write(root: Path, rows: list[dict[str, Any]]) -> None:
    """`rows` as the lake's transactions under `root`, one file per hour partition, in a
    shuffled order (the job's files hold rows in arrival order, not event time)."""
    table = pa.Table.from_pylist(list(reversed(rows)), schema=SCHEMA)
    ds.write_dataset(
        table,
        root / "transactions",
        format="parquet",
        partitioning=ds.partitioning(
            pa.schema([("dt", pa.string()), ("hr", pa.string())]), flavor="hive"
        ),
        existing_data_behavior="overwrite_or_ignore",
    )
