"""Card token and last-4: the only forms of a card number allowed outside the input topic.

The pure functions come first; the producer imports them for its ground truth, and the job
registers a Flink Python UDF over the same code, so both sides derive identical tokens.
"""

from __future__ import annotations

import hashlib
import hmac

from config.card_token import SECRET_ENV, SECRET_FILE_ENV

TOKEN_HEX_CHARS = 32


def card_token(card_number: str, key: str) -> str:
    """Keyed hash of a card number: lowercase hex HMAC-SHA256(key, card_number), first 32 chars.

    `key` is the secret from `settings.card_token_secret()` (env FRAUD_CARD_TOKEN_SECRET).
    The same number and key always give the same token; without the key it cannot be reversed.
    """
    digest = hmac.new(key.encode("utf-8"), card_number.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:TOKEN_HEX_CHARS]


def card_last4(card_number: str) -> str:
    """The last four digits of a card number (fewer if the number is shorter)."""
    digits = "".join(ch for ch in card_number if ch.isdigit())
    return digits[-4:]


# --- Flink UDF wrappers (registered by sql_templates/functions/udfs.sql.j2) -----------------
# They run in the Python worker, which reads the key from the file named by
# FRAUD_CARD_TOKEN_SECRET_FILE in its environment (else from FRAUD_CARD_TOKEN_SECRET itself);
# the key never appears in SQL. A file, because Apache Beam, which runs the Python workers,
# logs a worker's whole environment when its job stops: a key in the environment reaches the
# TaskManager's log. SQL types: STRING -> STRING.


def _secret_from_env() -> str:
    import os

    path = os.environ.get(SECRET_FILE_ENV)
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                key = fh.read().strip()
        except OSError as err:
            raise RuntimeError(
                f"{SECRET_FILE_ENV} names {path}, which the Flink Python worker cannot read: "
                f"{err.strerror}"
            ) from None
        if not key:
            raise RuntimeError(f"{SECRET_FILE_ENV} names {path}, which is empty")
        return key
    key = os.environ.get(SECRET_ENV)
    if not key:
        raise RuntimeError(
            f"neither {SECRET_FILE_ENV} nor {SECRET_ENV} is set in the Flink Python worker's "
            "environment; start the TaskManager with one of them (fraudctl stack up sets the "
            "file)"
        )
    return key


def _make_udfs():  # type: ignore[no-untyped-def]
    """Vectorized (pandas) UDFs: Flink hands over Arrow batches, one Python call per batch,
    which is several times faster than one call per row through the Beam runner."""
    from pyflink.table import DataTypes
    from pyflink.table.udf import ScalarFunction, udf

    class CardToken(ScalarFunction):
        """card_token(card_number STRING) -> STRING: the keyed token; NULL for NULL."""

        def open(self, function_context) -> None:  # type: ignore[no-untyped-def]
            self._key = _secret_from_env()

        def eval(self, card_numbers):  # type: ignore[no-untyped-def]
            key = self._key
            return card_numbers.map(lambda n: None if n is None else card_token(n, key))

    class CardLast4(ScalarFunction):
        """card_last4(card_number STRING) -> STRING; NULL for NULL."""

        def eval(self, card_numbers):  # type: ignore[no-untyped-def]
            return card_numbers.map(lambda n: None if n is None else card_last4(n))

    return (
        udf(CardToken(), result_type=DataTypes.STRING(), func_type="pandas", deterministic=True),
        udf(CardLast4(), result_type=DataTypes.STRING(), func_type="pandas", deterministic=True),
    )


_UDF_NAMES = ("card_token_udf", "card_last4_udf")


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    """Build the UDF objects on first access, so importing the pure functions stays light."""
    if name in _UDF_NAMES:
        udfs = dict(zip(_UDF_NAMES, _make_udfs(), strict=True))
        globals().update(udfs)
        return udfs[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
