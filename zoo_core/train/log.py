"""Where a run reports: metrics.jsonl, TensorBoard scalars and images, and the console.

On a terminal each epoch gets a tqdm bar; otherwise (CI, a log file) one line per epoch. Only rank 0 logs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from zoo_core.train.config import TrainConfig


class TrainingLog:
    def __init__(self, run_dir: Path, cfg: TrainConfig, *, enabled: bool, interactive: bool) -> None:
        self.run_dir, self.cfg, self.enabled, self.interactive = run_dir, cfg, enabled, interactive
        self.writer = None
        if enabled and cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(run_dir))

    def progress(self, *, total: int, initial: int, epoch: int) -> Any:
        return tqdm(
            total=total,
            initial=initial,
            desc=f"epoch {epoch + 1}/{self.cfg.epochs}",
            unit="batch",
            leave=False,
            dynamic_ncols=True,
            file=sys.stderr,
            disable=not (self.enabled and self.interactive),
        )

    def image_batch(self, x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        """One grid of the first augmented batch, as the model sees it (un-normalized for display)."""
        if self.writer is None:
            return
        from torchvision.utils import make_grid

        shape = (1, -1, 1, 1)
        images = x[:64].float().cpu() * torch.tensor(std).view(shape) + torch.tensor(mean).view(shape)
        self.writer.add_image("train/augmented_batch", make_grid(images.clamp(0, 1), nrow=8), 0)

    def epoch_end(self, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with (self.run_dir / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(metrics) + "\n")
        if self.writer is not None:
            step = metrics["epoch"]
            for key in ("train_loss", "val_loss", "val_acc", "val_acc5", "lr", "img_per_s"):
                self.writer.add_scalar(
                    f"{'train' if key in ('train_loss', 'lr', 'img_per_s') else 'val'}/{key}",
                    metrics[key],
                    step,
                )
            self.writer.flush()
        print(
            f"epoch {metrics['epoch']:>3}/{self.cfg.epochs}  train_loss {metrics['train_loss']:.4f}  "
            f"val_loss {metrics['val_loss']:.4f}  val_acc {metrics['val_acc']:.2%}  "
            f"val_acc5 {metrics['val_acc5']:.2%}  lr {metrics['lr']:.3g}  {metrics['img_per_s']:,.0f} img/s  "
            f"{metrics['time_s']:.1f}s",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
