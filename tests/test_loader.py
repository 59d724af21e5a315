"""The data path: the tensor join equals a brute-force per-row join; seeded, complete, deterministic shuffling."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from model_zoo.datasets import prepare
from model_zoo.datasets.loader import ItemInfoTable, MMCTRDataLoader


@pytest.fixture(scope="module")
def parts(tiny_params):
    params = tiny_params
    files = prepare.locate_data(params, progress=False)
    table = prepare.load_item_table(params, files)
    loader = prepare.make_loader(files.train, params, table, train=True)
    return params, files, table, loader


def test_join_equals_brute_force(parts):
    params, files, table, loader = parts
    item_info = pd.read_parquet(files.item_info)
    split = pd.read_parquet(files.train)
    max_len = params["max_len"]
    rows = torch.arange(37, 37 + 50)
    batch = loader.batch(rows)
    width = max_len + 1
    for b, r in enumerate(rows.tolist()):
        history = list(split["item_seq"].iloc[r])[-max_len:]
        ids = history + [int(split["item_id"].iloc[r])]
        for pos, item in enumerate(ids):  # target last
            ref = item_info.iloc[item]  # positional lookup, as the challenge collator did
            assert ref["item_id"] == item
            flat = b * width + pos
            assert batch.item_dict["item_id"][flat].item() == item
            np.testing.assert_array_equal(batch.item_dict["item_tags"][flat].numpy(), np.asarray(ref["item_tags"]))
            np.testing.assert_array_equal(batch.item_dict["item_emb_d128"][flat].numpy(),
                                          np.asarray(ref["item_emb_d128"], dtype=np.float32))
        np.testing.assert_array_equal(batch.mask[b].numpy(), (np.asarray(history) > 0).astype(np.float32))
        for col in ("likes_level", "views_level", "user_id"):
            assert batch.batch_dict[col][b].item() == split[col].iloc[r]
        assert batch.batch_dict["label"][b].item() == split["label"].iloc[r]


def test_history_keeps_most_recent_items(parts):
    params, files, table, loader = parts
    full = pd.read_parquet(files.train)["item_seq"].iloc[0]
    batch = loader.batch(slice(0, 1))
    kept = batch.item_dict["item_id"][: params["max_len"]].tolist()
    assert kept == list(full)[-params["max_len"]:]


def test_epoch_covers_every_row_once_in_seeded_order(parts):
    params, files, table, loader = parts
    split = {k: v for k, v in {"item_seq": np.arange(100 * 3).reshape(100, 3) % 7,
                               "item_id": np.arange(1, 101) % 7 + 1, "label": np.zeros(100, np.float32)}.items()}
    tiny_table = ItemInfoTable({"item_id": np.arange(8)})

    def epoch_ids(seed, epochs=2):
        ld = MMCTRDataLoader(split, tiny_table, batch_size=16, shuffle=True, seed=seed)
        return [torch.cat([b.batch_dict["label"] * 0 + b.item_dict["item_id"].view(len(b.mask), -1)[:, -1]
                           for b in ld]) for _ in range(epochs)]

    a0, a1 = epoch_ids(3)
    b0, b1 = epoch_ids(3)
    assert torch.equal(a0, b0) and torch.equal(a1, b1), "same seed must give the same batches"
    assert not torch.equal(a0, a1), "each epoch reshuffles"
    assert sorted(a0.tolist()) == sorted(split["item_id"].tolist())
    assert len(MMCTRDataLoader(split, tiny_table, batch_size=16)) == 7


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size=0"):
        MMCTRDataLoader({"item_seq": np.zeros((2, 2)), "item_id": np.ones(2)}, ItemInfoTable({"item_id": np.arange(2)}), 0)
