"""Where a run reports: metrics.jsonl, TensorBoard scalars and images, and the console.

On a terminal each epoch gets a tqdm bar; otherwise (CI, a scheduler, a log file) a progress line at every
logging point and at least every 30 s, also inside a step that runs longer (the heartbeat of
``zoo_core.progress``), and one line per epoch. Only rank 0 logs.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from zoo_core import progress
from zoo_core.train.config import TrainConfig


class TrainingLog:
    def __init__(self, run_dir: Path, cfg: TrainConfig, *, enabled: bool, interactive: bool) -> None:
        self.run_dir, self.cfg, self.enabled, self.interactive = run_dir, cfg, enabled, interactive
        self.writer = None
        self.bar: Any = None  # the progress of the current epoch
        if enabled and cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(run_dir))

    def progress(self, *, total: int, initial: int, epoch: int) -> Any:
        """A tqdm bar on a terminal; otherwise ``ProgressLines``. Both take update, set_postfix, close;
        ``close`` of the log closes the last one too, when an epoch ends in an error."""
        self.bar = self._progress(total=total, initial=initial, epoch=epoch)
        return self.bar

    def _progress(self, *, total: int, initial: int, epoch: int) -> Any:
        if self.enabled and not self.interactive:
            return ProgressLines(
                total=total,
                initial=initial,
                epoch=epoch,
                epochs=self.cfg.epochs,
                batch_size=self.cfg.batch_size,
                heartbeat=True,
            )
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
        path = self.run_dir / "metrics.jsonl"
        with path.open("a") as f:
            if f.tell() and not _ends_a_line(path):  # a line cut short by a crash must not swallow this one
                f.write("\n")
            f.write(json.dumps(metrics) + "\n")
        if self.writer is not None:
            step = metrics["epoch"]
            for key in ("train_loss", "val_loss", "val_acc", "val_acc5", "lr", "img_per_s"):
                if metrics[key] is None:  # not evaluated this epoch (--eval-every)
                    continue
                self.writer.add_scalar(
                    f"{'train' if key in ('train_loss', 'lr', 'img_per_s') else 'val'}/{key}",
                    metrics[key],
                    step,
                )
            self.writer.flush()
        val = "not evaluated"  # --eval-every skipped this epoch
        if metrics["val_acc"] is not None:
            val = (
                f"val_loss {metrics['val_loss']:.4f}  val_acc {metrics['val_acc']:.2%}  "
                f"val_acc5 {metrics['val_acc5']:.2%}"
            )
        print(
            f"epoch {metrics['epoch']:>3}/{self.cfg.epochs}  train_loss {metrics['train_loss']:.4f}  {val}  "
            f"lr {metrics['lr']:.3g}  {metrics['img_per_s']:,.0f} img/s  {metrics['time_s']:.1f}s",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()


def _ends_a_line(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(-1, 2)
        return f.read(1) == b"\n"


class ProgressLines:
    """Progress for output that is not a terminal: one line at each logging point (``set_postfix``, where the
    loss is known) and, between them, whenever ``interval`` seconds have passed (``update``, on the host clock
    alone: no wait for the device). A line: epoch, step done/total, the last logged loss, img/s, ETA. While it
    is open the heartbeat calls ``beat``, which writes the line when ``interval`` has passed without any,
    with the running step's time when that step has run a third of it or more.

    tqdm's own non-terminal output is a bar redrawn with carriage returns, unreadable in a log file; these
    lines are the small part of it a log needs, so they are written here. ``heartbeat=True`` (as
    ``TrainingLog.progress`` asks) joins the heartbeat thread; a test with its own clock calls ``beat``.
    """

    def __init__(
        self,
        *,
        total: int,
        initial: int,
        epoch: int,
        epochs: int,
        batch_size: int,
        interval: float | None = None,
        file: Any = None,
        clock: Any = time.monotonic,
        heartbeat: bool = False,
    ) -> None:
        self.total, self.done, self.epoch, self.epochs = total, initial, epoch, epochs
        self.batch_size, self.file, self.clock = batch_size, file, clock
        self.interval = progress.INTERVAL if interval is None else interval
        self.initial = initial
        self.started = self.last_line = self.step_started = clock()
        self.loss: str | None = None
        self.lr: str | None = None
        self.heartbeat = heartbeat
        if heartbeat:
            progress.enter(self)

    def update(self, n: int = 1) -> None:
        self.done += n
        self.step_started = self.clock()
        if self.step_started - self.last_line >= self.interval:
            self.write()

    def set_postfix(self, **values: Any) -> None:
        self.loss = str(values.get("loss", self.loss))
        self.lr = values.get("lr", self.lr)
        self.write()

    def beat(self) -> None:
        now = self.clock()
        if progress.beat_due(now, self.last_line, self.interval):
            self.write(running=now - self.step_started)

    def close(self) -> None:
        if self.heartbeat:
            progress.leave(self)

    def rate(self, now: float) -> float:
        """Steps a second since this epoch's progress began (0 before the first step)."""
        steps, elapsed = self.done - self.initial, now - self.started
        return steps / elapsed if steps and elapsed > 0 else 0.0

    def write(self, running: float | None = None) -> None:
        now = self.clock()
        self.last_line = now
        rate = self.rate(now)
        if rate:
            left = self.total - self.done
            run_left = left + (self.epochs - self.epoch - 1) * self.total
            eta = f"ETA {progress.clock_text(left / rate)} (run {progress.clock_text(run_left / rate)})"
        else:
            eta = "ETA -"
        long_step = running is not None and running >= self.interval / 3  # a short one needs no word
        step = f"  (step {self.done + 1} running for {progress.clock_text(running)})" if long_step else ""
        progress.write_line(
            f"epoch {self.epoch + 1}/{self.epochs}  step {self.done}/{self.total}  loss {self.loss or '-'}  "
            + (f"lr {self.lr}  " if self.lr else "")
            + f"{_img_per_s(rate * self.batch_size)} img/s  {eta}{step}",
            now,
            self.file,
        )


def _img_per_s(value: float) -> str:
    """12,345 or 6.4: a slow run's rate keeps a decimal rather than reading as 0."""
    return f"{value:,.1f}" if 0 < value < 10 else f"{value:,.0f}"
