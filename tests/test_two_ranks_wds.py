"""Two torchrun agents on this host (``--nnodes 2``, rendezvous on 127.0.0.1), one rank each, training on
WebDataset shards of uneven sizes: together the ranks see every shard sample exactly once per epoch."""

from __future__ import annotations

import pytest
from test_datasets_wds import write_shards
from test_two_nodes import run_two_agents

pytest.importorskip("webdataset")
SAMPLES = 32  # shards of 5, 5, 5, 5, 5, 5, 2; each sample's label is its index

WORKER = """
import json, os, sys
from pathlib import Path
from zoo_core.train.trainer import Trainer
from zoo_core.train.config import TrainConfig

out, shards = Path(sys.argv[1]), sys.argv[2]
cfg = TrainConfig(dataset="wds", model="lenet", epochs=1, batch_size=8, crop_padding=0, flip=False,
                  device="cpu", tensorboard=False, data_dir=shards, channels_last=False,
                  dataset_kwargs={"cache": False, "image_size": 16})
trainer = Trainer(cfg, out / "run")
loader, seen = trainer.train_loader, {}
for epoch in (0, 1):
    loader.set_epoch(epoch)
    seen[epoch] = [label for _, y in loader for label in y.tolist()]
trainer.fit()
rank = os.environ["RANK"]
(out / f"rank{rank}.json").write_text(json.dumps({"world": os.environ["WORLD_SIZE"], "seen": seen}))
"""


@pytest.mark.slow
def test_two_ranks_see_every_shard_sample_once_per_epoch(tmp_path):
    shards, out = tmp_path / "shards", tmp_path / "out"
    write_shards(shards, n=SAMPLES)
    write_shards(shards, "test", n=8)
    write_shards(shards, n=SAMPLES)  # classes.txt of the training split's 32 classes
    ranks = run_two_agents(tmp_path, WORKER, out, shards)
    assert all(r["world"] == "2" for r in ranks)
    for epoch in ("0", "1"):
        a, b = ranks[0]["seen"][epoch], ranks[1]["seen"][epoch]
        assert len(a) == len(b) == SAMPLES // 2
        assert sorted(a + b) == list(range(SAMPLES))
    assert ranks[0]["seen"]["0"] != ranks[0]["seen"]["1"]  # reshuffled each epoch
    assert (out / "run" / "metrics.jsonl").read_text().count("\n") == 1  # one run, written by rank 0
