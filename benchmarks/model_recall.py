"""What RISK_SCORE catches, heuristic (version 0) against a trained model, per kind of fraud.

    .venv/bin/python -m benchmarks.model_recall --seed 2026 --version 1

Generated, labelled traffic (the producer's generator, a seed other than the model's) gets its
behaviour features from the job's own SQL (jobs/model/features.py, the replay of the card_legs
view), then both scorers score every transaction (udfs/risk_model.py score_batch, as the job
does). For each scorer and threshold, per scenario kind expecting RISK_SCORE: the recall; per
look-alike kind (legit): the share flagged. Thresholds: the lowest score at which precision over
all transactions is at least 0.9 (`p>=0.9`), and the rule's configured threshold (`rule`).
Offline, so it measures the scoring, not the job's delivery: `make demo` and the live tests do
that. Prints a table and a JSON summary (the last line).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from typing import Any

import numpy as np

from config import load_settings
from jobs.model.features import generated_table, table_features
from jobs.sql.render import risk_score_params
from udfs.risk_model import score_batch


def threshold_for_precision(y: np.ndarray, scores: np.ndarray, target: float = 0.9) -> float:
    """The lowest score at which the transactions scored at or above it are at least `target`
    fraud (inf when no score gets there)."""
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(y[order])
    precision = tp / np.arange(1, len(y) + 1)
    ok = np.flatnonzero(precision >= target)
    return float(scores[order][ok.max()]) if len(ok) else float("inf")


def kinds(truth: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """transaction id -> (`fraud` or `lookalike`, its kind) for RISK_SCORE's scenarios and the
    look-alikes."""
    out = {}
    for t in truth:
        if t.get("expected_rule") == "RISK_SCORE":
            kind = ("fraud", t["scenario_type"])
        elif t.get("kind") == "lookalike":
            kind = ("lookalike", t["lookalike_type"])
        else:
            continue
        for txn in t.get("transaction_ids", []):
            out[txn] = kind
    return out


def figures(
    ids: list[str], labels: dict[str, tuple[str, str]], scores: np.ndarray, threshold: float
) -> dict[str, Any]:
    """Recall per fraud kind, share flagged per look-alike kind, precision overall."""
    flagged = scores >= threshold
    seen: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for txn, hit in zip(ids, flagged.tolist(), strict=True):
        if txn in labels:
            seen[labels[txn]].append(hit)
    y = np.array([labels.get(t, ("", ""))[0] == "fraud" for t in ids])
    tp = int((flagged & y).sum())
    return {
        "threshold": round(threshold, 4),
        "precision": round(tp / max(int(flagged.sum()), 1), 4),
        "recall": round(tp / max(int(y.sum()), 1), 4),
        "by_kind": {
            f"{group}:{kind}": {"n": len(hits), "flagged": round(sum(hits) / len(hits), 4)}
            for (group, kind), hits in sorted(seen.items())
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--events", type=int, default=432_000)
    parser.add_argument("--population", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--version", type=int, default=None, help="default: the config's")
    args = parser.parse_args()
    s = load_settings(producer={"population": args.population, "rate": args.rate})
    version = args.version if args.version is not None else s.job.rules.risk_score.model_version
    t0 = time.monotonic()
    table, truth = generated_table(s, args.seed, args.events)
    frame = table_features(s, table)
    ids = frame["transaction_id"].tolist()
    labels = kinds(truth)
    y = np.array([labels.get(t, ("", ""))[0] == "fraud" for t in ids])
    params = risk_score_params(s)
    scorers = {
        "heuristic (0)": frame["risk_score"].to_numpy(float),
        f"model ({version})": score_batch(
            frame, version, 2.0, params, s.scoring.models_dir()
        ).score,
    }
    summary: dict[str, Any] = {
        "seed": args.seed,
        "events": args.events,
        "transactions": len(ids),
        "fraud": int(y.sum()),
        "seconds": round(time.monotonic() - t0, 1),
        "scorers": {},
    }
    for name, scores in scorers.items():
        scores = np.nan_to_num(scores, nan=0.0)
        summary["scorers"][name] = {
            "p>=0.9": figures(ids, labels, scores, threshold_for_precision(y, scores)),
            "rule": figures(ids, labels, scores, s.job.rules.risk_score.threshold),
        }
    for name, at in summary["scorers"].items():
        for which, f in at.items():
            print(
                f"{name:14} {which:7} threshold {f['threshold']:<7} precision {f['precision']:<6} "
                f"recall {f['recall']:<6} "
                + " ".join(f"{k}={v['flagged']} (n={v['n']})" for k, v in f["by_kind"].items())
            )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
