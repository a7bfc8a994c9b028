"""More than one machine: two torchrun agents on this host, ``--nnodes 2`` with a rendezvous on 127.0.0.1,
one rank each. Together the ranks see every training image exactly once per epoch, in memory or streamed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 32  # per epoch: 4 global batches of 8, 4 images a rank each

# each image carries its index in its first pixel; the ranks decode it back from their normalized batches
WORKER = """
import json, os, sys
from pathlib import Path
import torch
from zoo_core.train.trainer import Trainer
from zoo_core.train.config import TrainConfig

out, tree, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
cfg = TrainConfig(dataset="imagefolder", model="lenet", epochs=1, batch_size=8, crop_padding=0, flip=False,
                  device="cpu", tensorboard=False, data_dir=tree, channels_last=False,
                  dataset_kwargs={"data_mode": mode, "image_size": 32, "cache": False})
trainer = Trainer(cfg, out / "run")
loader, seen = trainer.train_loader, {}
for epoch in (0, 1):
    loader.set_epoch(epoch)
    ids = []
    for x, _ in loader:
        first = ((x[:, :2, 0, 0] - loader.transform.normalizer.shift.view(1, -1)[:, :2])
                 / loader.transform.normalizer.scale.view(1, -1)[:, :2]).round().long()
        ids += (first[:, 0] + 256 * first[:, 1]).tolist()
    seen[epoch] = ids
trainer.fit()
rank = os.environ["RANK"]
(out / f"rank{rank}.json").write_text(json.dumps({"world": os.environ["WORLD_SIZE"], "seen": seen}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_tree(root: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", IMAGES), ("test", 8)):
        for i in range(n):
            folder = root / split / ("even" if i % 2 == 0 else "odd")
            folder.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            pixels[0, 0, :2] = (i % 256, i // 256)
            Image.fromarray(pixels).save(folder / f"{i:04d}.png")


def run_two_agents(tmp_path: Path, worker: str, out: Path, *args: object) -> list[dict]:
    """Two torchrun agents on 127.0.0.1, one rank each, running ``worker`` with ``out`` and ``args``; each
    rank writes ``out/rank{r}.json``, returned in rank order once both agents exited 0."""
    script = tmp_path / "worker.py"
    script.write_text(worker)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "ZOO_CACHE": str(tmp_path / "c")}
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1"]
    command += ["--master-addr", "127.0.0.1", "--master-port", str(free_port())]
    agents = [
        subprocess.Popen(
            [*command, "--node-rank", str(node), str(script), str(out), *map(str, args)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for node in (0, 1)
    ]
    results = [agent.communicate(timeout=600) for agent in agents]
    for agent, (_, err) in zip(agents, results, strict=True):
        assert agent.returncode == 0, err[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["memory", "stream"])
def test_two_nodes_see_every_training_image_once_per_epoch(tmp_path, mode):
    tree, out = tmp_path / "tree", tmp_path / "out"
    write_tree(tree)
    ranks = run_two_agents(tmp_path, WORKER, out, tree, mode)
    assert all(r["world"] == "2" for r in ranks)
    train_files = sorted(p.stem for p in (tree / "train").rglob("*.png"))
    for epoch in ("0", "1"):
        a, b = ranks[0]["seen"][epoch], ranks[1]["seen"][epoch]
        assert len(a) == len(b) == IMAGES // 2
        # the loader numbers images class by class, names sorted: map them back to the files' indices
        assert sorted(a + b) == sorted(range(IMAGES)) == sorted(int(s) for s in train_files)
    assert ranks[0]["seen"]["0"] != ranks[0]["seen"]["1"]  # reshuffled each epoch
    assert (out / "run" / "metrics.jsonl").read_text().count("\n") == 1  # one run, written by rank 0
