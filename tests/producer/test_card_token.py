"""The pure card-token functions shared by the producer's truth and the job's UDF."""

from __future__ import annotations

import re

from udfs.card_token import card_last4, card_token


def test_card_token_is_hmac_sha256_truncated_to_32_hex() -> None:
    # RFC-style known answer: HMAC-SHA256(key="key", "The quick brown fox jumps over the lazy dog")
    full = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert card_token("The quick brown fox jumps over the lazy dog", "key") == full[:32]


def test_card_token_depends_on_number_and_key() -> None:
    token = card_token("4111111111111111", "secret-a")
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert token == card_token("4111111111111111", "secret-a")
    assert token != card_token("4111111111111111", "secret-b")
    assert token != card_token("4111111111111112", "secret-a")


def test_card_last4() -> None:
    assert card_last4("4111111111111234") == "1234"
    assert card_last4("4111 1111 1111 5678") == "5678"
    assert card_last4("12") == "12"
