"""What the seqneg world's oracle AUC owes to variables no model sees, and to the order of the history.

Usage::

    python benchmarks/bench_seqneg_ceiling.py --preset small --seed 2025

Re-simulates the world (seconds; the files are not needed) and scores its valid rows with the generator's own
posterior ``P(c) / (P(c) + k Q(c))`` (:mod:`model_zoo.datasets.synthetic.seqneg`), once exactly and once per
replacement of a hidden variable by what the rows show. Each variant still knows every item-level parameter of the
generator (popularity, topic, content neighbours, arrival), which a model must learn from 200k rows, so each is an
upper bound of what a model can reach with that information:

* ``exact``: the oracle (``oracle_valid_AUC`` of the manifest);
* ``user_topics_from_history``: the user's long-term topics and weights (hidden) replaced by the topics of its
  history items and their frequencies (at most 3, as the generator draws);
* ``+ time_unknown``: also the positive's time t (hidden) replaced by the middle of the valid period, 0.95 (or the
  latest arrival among the row's items, if later);
* ``+ freshness_unknown``: also the freshness boost of new items dropped from P (an item's arrival time is hidden);
* ``recency_blind_last_k`` / ``order_blind_whole_history``: the exact oracle with the sequential component's recency
  weights made uniform over the last ``recent_k`` items / over the whole history: what order is worth here.

Prints one JSON line per variant: valid AUC overall and on cold rows (candidates never in train).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Optional, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from model_zoo.datasets.synthetic import seqneg as sn
from model_zoo.datasets.synthetic.config import SEQNEG_PRESETS


def history_topics(cat: sn.Catalog, draw: sn.SplitDraw, slots: int) -> tuple:
    """(G, slots) topics of each user's history items by frequency, and their frequencies (summing to 1)."""
    groups = draw.hist_len.shape[0]
    topics, weights = np.zeros((groups, slots), dtype=np.int64), np.zeros((groups, slots))
    for g in range(groups):
        found, counts = np.unique(cat.topic[draw.hist[draw.hist_off[g]:draw.hist_off[g + 1]]], return_counts=True)
        top = np.argsort(-counts, kind="stable")[:slots]
        topics[g, :len(top)] = found[top]
        weights[g, :len(top)] = counts[top] / counts[top].sum()
    return topics, weights


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=sorted(SEQNEG_PRESETS), help="world preset")
    parser.add_argument("--seed", type=int, default=2025, help="world seed (the dataset block's synthetic.seed)")
    args = parser.parse_args(argv)
    cfg = dataclasses.replace(SEQNEG_PRESETS[args.preset], seed=args.seed)
    state = sn.simulate(cfg)
    cat, users, draw = state.catalog, state.users, state.splits["valid"]
    grp = draw.row_group
    user = draw.first_user + grp
    cand, label, num_neg, hist_len = draw.candidate, draw.label, draw.num_neg[grp], draw.hist_len[grp]
    recent = sn._recent(draw.hist, draw.hist_off[grp + 1], hist_len, cfg.recent_k)
    train = state.splits["train"]
    seen = np.zeros(cat.topic.shape[0], dtype=bool)
    seen[train.candidate] = True
    seen[train.hist] = True
    cold = ~seen[cand]
    t_pos = draw.t_pos[grp]

    def report(name: str, p_next: np.ndarray, t: np.ndarray) -> None:
        score = sn.oracle_prob(p_next, sn.negative_prob(cat, cand, t), num_neg)
        print(json.dumps({"preset": args.preset, "seed": args.seed, "variant": name,
                          "valid_AUC": round(float(roc_auc_score(label, score)), 4),
                          "valid_cold_AUC": round(float(roc_auc_score(label[cold], score[cold])), 4),
                          "cold_rows": int(cold.sum())}), flush=True)

    def p_next(cat_: sn.Catalog, cfg_: object, recent_: np.ndarray, topics: np.ndarray, weights: np.ndarray,
               t: np.ndarray) -> np.ndarray:
        return sn.next_item_prob(cat_, cfg_, cand, recent_, hist_len, topics, weights, t)

    report("exact", p_next(cat, cfg, recent, users.topics[user], users.weights[user], t_pos), t_pos)
    topics, weights = history_topics(cat, draw, users.topics.shape[1])
    topics, weights = topics[grp], weights[grp]
    report("user_topics_from_history", p_next(cat, cfg, recent, topics, weights, t_pos), t_pos)
    latest = np.array([cat.arrival[draw.hist[draw.hist_off[g]:draw.hist_off[g + 1]]].max()
                       for g in range(draw.hist_len.shape[0])])[grp]
    t_mid = np.maximum.reduce([np.full(cand.shape, 0.95), cat.arrival[cand] + 1e-9, latest + 1e-9])
    report("user_topics_from_history+time_unknown", p_next(cat, cfg, recent, topics, weights, t_mid), t_mid)
    no_boost = dataclasses.replace(cat, boost=0.0)
    report("user_topics_from_history+time_unknown+freshness_unknown",
           p_next(no_boost, cfg, recent, topics, weights, t_mid), t_mid)
    uniform = dataclasses.replace(cfg, recency_decay=1.0)
    report("recency_blind_last_k", p_next(cat, uniform, recent, users.topics[user], users.weights[user], t_pos), t_pos)
    whole = dataclasses.replace(cfg, recency_decay=1.0, recent_k=cfg.seq_len)
    recent_all = sn._recent(draw.hist, draw.hist_off[grp + 1], hist_len, cfg.seq_len)
    report("order_blind_whole_history",
           p_next(cat, whole, recent_all, users.topics[user], users.weights[user], t_pos), t_pos)
    return 0


if __name__ == "__main__":
    sys.exit(main())
