"""The Trainer: train one model on one data set, evaluate every epoch, keep checkpoints, resume exactly.

Read it top to bottom: ``setup`` builds data, model, optimizer and schedule; ``fit`` runs the epochs;
``train_epoch`` is the step loop. The data sit on the device as uint8 and are augmented a batch at a time;
inside an epoch the host waits on the device only at logging points and at a --save-every snapshot. Stop
signals (``stop``), the run directory's lock (``run_lock``) and the snapshots (``periodic_save``) live in
modules of their own; the loop only asks them at each step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo_core import contracts, distributed, progress
from zoo_core.allocator import keep_freed_memory
from zoo_core.catalog import get_catalog
from zoo_core.data.order import AUG_STREAM, mix
from zoo_core.device import default_channels_last, pick_precision, resolve_device
from zoo_core.errors import BadInputError, ZooError
from zoo_core.out_of_memory import memory_error, said_in_one_line
from zoo_core.train import checkpoint, init_weights
from zoo_core.train.config import DEFAULT_SAVE_EVERY, DEFAULT_STOP_SIGNALS, TrainConfig, merged_recipe
from zoo_core.train.data_recipe import refine_for_data
from zoo_core.train.ema import WeightAverage
from zoo_core.train.log import TrainingLog
from zoo_core.train.optim import (
    check_optimizer_specs,
    freeze_finished_groups,
    hold_finished_groups,
    make_optimizer,
    make_schedule,
)
from zoo_core.train.periodic_save import PeriodicSaver, host_copy
from zoo_core.train.preflight import Preflight
from zoo_core.train.run_lock import RunInUse, RunLock
from zoo_core.train.stop import StopAgreed, StopAgreement, StopSignals
from zoo_core.train.tta import TestTimeAugmentation

# images handed to a model's init_from_data (airbench whitens from 5,000 CIFAR-10 images)
DATA_INIT_IMAGES = 5000
# evaluation batches hold at most as many pixels as 256 images of 224×224 (and never fewer images than a
# training batch): no gradients are kept, but 256 images of 2048×2048 would not fit where 4 trained
EVAL_PIXELS = 256 * 224 * 224


class TrainingDiverged(ZooError):
    """The loss became NaN or infinite."""


class TrainingInterrupted(ZooError):
    """A stop signal (Ctrl-C, SIGTERM...): the state was saved and the run can be resumed. Exits with
    128 + the signal's number, as a shell reports a process ended by it; the message is rank 0's alone."""

    exit_code = 130

    def __init__(self, message: str, signum: int = 2) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


def batch_seed(seed: int, epoch: int, batch: int, rank: int) -> int:
    """The seed of one batch's --aug augmentations: a pure function of its place, so a resumed run replays
    it; drawn by the data path's one seed helper, on a stream of its own."""
    return mix(seed, AUG_STREAM, epoch, rank, batch)


class Trainer:
    """Train ``cfg.model`` on ``cfg.dataset`` into ``run_dir``; ``resume=True`` continues from its last.pt.

    ``callbacks`` are plain objects with any of ``on_step_end(trainer)`` and
    ``on_epoch_end(trainer, metrics)``. ``stop_signals`` (names) stop the run at the next step with a
    save, from set-up on; ``trainer.stop_signals.request()`` does the same from code. ``save_every``
    (``"500"`` steps, ``"10m"``, ``"off"``) adds mid-epoch states, written in the background.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: Path,
        *,
        resume: bool = False,
        interactive: bool = False,
        callbacks: Sequence[object] = (),
        stop_signals: Sequence[str] = DEFAULT_STOP_SIGNALS,
        save_every: str = DEFAULT_SAVE_EVERY,
    ):
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.interactive = interactive
        self.callbacks = list(callbacks)
        self.stop_signals = StopSignals(stop_signals)
        self.lock = RunLock()
        self.saver = PeriodicSaver(save_every)
        self.saved_at: str | None = None  # where the newest training state on disk stands, for messages
        try:
            with self.stop_signals.installed():
                self.setup(cfg)
        except BaseException:
            self.lock.release()
            raise

    # -- set-up ---------------------------------------------------------------------------------------

    def setup(self, cfg: TrainConfig) -> None:
        from zoo_core.augment import build_augmentations
        from zoo_core.data.loader import make_loader

        catalog = get_catalog()
        dataset_entry = catalog.datasets.get(cfg.dataset)
        model_entry = catalog.models.get(cfg.model)
        requested = cfg  # what the user set; the data set's own recipe fills the rest once it is built
        self.cfg = cfg = cfg.with_recipe(
            merged_recipe(dataset_entry.name, dataset_entry.meta, model_entry.meta)
        )
        if cfg.augs:  # check the specs now, before minutes of data loading; built for real below
            build_augmentations(cfg.augs, num_classes=dataset_entry.meta.get("num_classes") or 2)
        check_optimizer_specs(cfg, catalog)  # the same for the optimizers
        device_type = resolve_device(cfg.device)
        if device_type == "cpu":  # freed activations reused, not page-faulted anew each step
            keep_freed_memory()
        if cfg.channels_last is None:  # neither the user nor a recipe chose: what is fastest there
            layout = default_channels_last(torch.device(device_type).type)
            self.cfg = cfg = dataclasses.replace(cfg, channels_last=layout)
        self.dist = distributed.init_distributed(torch.device(device_type).type)
        self.device = distributed.device_for(device_type, self.dist)
        self.run_dir = Path(distributed.broadcast_object(str(self.run_dir)))  # rank 0's timestamped name
        self.stop = StopAgreement(self.stop_signals, distributed=self.dist.enabled)
        self.lock_run_dir(only_if_present=True)  # a resumed run: refused at once if another process has it
        if cfg.batch_size % self.dist.world_size:
            raise BadInputError(
                f"--batch-size {cfg.batch_size} must divide evenly over {self.dist.world_size} ranks"
            )
        torch.manual_seed(cfg.seed)

        kwargs = {"root": Path(cfg.data_dir) if cfg.data_dir else None, **cfg.dataset_kwargs}
        self._reads_options = {  # what an out-of-memory message may suggest
            key: contracts.takes_keyword(dataset_entry.load(), key) for key in ("image_size", "data_mode")
        }
        with self._out_of_memory(lambda: f"reading data set {cfg.dataset}", reading=True):
            train_set = catalog.datasets.build(dataset_entry.name, split="train", **kwargs)
            test_set = catalog.datasets.build(dataset_entry.name, split="test", **kwargs)
        for split, built in (("train", train_set), ("test", test_set)):  # what the builder returned
            contracts.dataset_kind(built, f"data set {dataset_entry.name!r} ({split} split)")
        self.cfg = cfg = refine_for_data(  # train_set.recipe (e.g. sized to it); a batch that fits it
            requested, cfg, train_set, world_size=self.dist.world_size, announce=self.dist.is_main
        )
        self.classes = list(train_set.classes)
        if list(test_set.classes) != self.classes:
            raise ZooError(f"{cfg.dataset}: the train and test splits have different classes")
        mean = getattr(train_set, "mean", None) or dataset_entry.meta.get("mean")
        std = getattr(train_set, "std", None) or dataset_entry.meta.get("std")
        common = dict(
            device=self.device,
            channels_last=cfg.channels_last,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        # make_loader computes mean/std from the training images where the data set declares none
        self.train_loader = make_loader(
            train_set,
            batch_size=cfg.batch_size // self.dist.world_size,
            train=True,
            mean=mean,
            std=std,
            crop_padding=cfg.crop_padding,
            padding_mode=cfg.padding_mode,
            flip=cfg.flip,
            alternate_flip=cfg.alternate_flip,
            resized_crop=bool(cfg.random_resized_crop),
            seed=cfg.seed,
            **common,
        )
        self.mean, self.std = self.train_loader.mean, self.train_loader.std
        self.input_size = contracts.dataset_input_size(train_set, dataset_entry.meta)
        pixels = self.input_size[1] * self.input_size[2]
        self.eval_batch_size = max(cfg.batch_size, min(256, EVAL_PIXELS // pixels))
        self.test_loader = make_loader(
            test_set, batch_size=self.eval_batch_size, train=False, mean=self.mean, std=self.std, **common
        )
        self.crop_pct = float(getattr(train_set, "crop_pct", 1.0))  # the evaluation transform, for the card
        if len(self.train_loader) == 0:
            raise BadInputError(
                f"--batch-size {cfg.batch_size} is larger than the training set ({len(train_set)})"
            )

        self.model_kwargs = {
            "num_classes": len(self.classes),
            "in_chans": self.input_size[0],
            **cfg.model_kwargs,
        }
        where = f"the builder of model {model_entry.name!r} (plugin {model_entry.plugin})"
        model = contracts.check_module(model_entry.build(**self.model_kwargs), where).to(self.device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model  # the plain module: checkpoints and the optimizer use it
        self.lock_run_dir()  # a new run: its folder is made here, once its data and model are known to build
        resuming = self.resume and any(
            (self.run_dir / name).exists() for name in (checkpoint.TRAINING_STATE, checkpoint.PREVIOUS_STATE)
        )
        if self.dist.is_main and self.run_dir.is_dir():  # what a killed run was writing when it died
            checkpoint.remove_stale_temp_files(self.run_dir)
        if cfg.data_init and hasattr(model, "init_from_data") and not resuming:
            self.stop_before_training()
            with torch.no_grad(), progress.Phase("data-init (init_from_data)", unit="step"):
                # e.g. whitening filters from the patch covariance of real images
                model.init_from_data(self.train_loader.first_images(DATA_INIT_IMAGES))
        init_weights.prepare_model(  # --init weights (not when resuming), --freeze-backbone
            model, cfg, model_kwargs=self.model_kwargs, resuming=resuming, announce=self.dist.is_main
        )
        self.optimizer = make_optimizer(model, cfg)
        self.total_steps = cfg.epochs * len(self.train_loader)
        self.preflight = (
            Preflight(
                total_steps=self.total_steps,
                steps_per_epoch=len(self.train_loader),
                batch_size=cfg.batch_size,
                model=cfg.model,
                input_size=self.input_size,
            )
            if self.device.type == "cpu" and self.dist.is_main
            else None
        )
        self.schedule = make_schedule(self.optimizer, cfg.schedule, self.total_steps)
        self.average = None
        if cfg.ema:
            lookahead = cfg.ema_mode == "lookahead"
            self.average = WeightAverage(
                model, cfg.ema, every=cfg.ema_every, warmup=cfg.ema_warmup, lookahead=lookahead
            )
        self.final_model = self.average.module if self.average else model  # what is evaluated and saved
        self.precision, self.autocast_dtype, use_scaler = pick_precision(cfg.precision, self.device)
        if self.dist.is_main:  # what was chosen and why, before the first step
            print(self.precision.line, file=sys.stderr, flush=True)
            if self.precision.warning:
                print(f"zoo: warning: {self.precision.warning}", file=sys.stderr, flush=True)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        # compile first, then wrap for DDP (the order torch recommends)
        self.compiled = torch.compile(model) if cfg.compile else model
        # evaluated without the DDP wrapper (shards may differ by one batch); compiled once when it is model
        self.compiled_final = self.compiled if self.final_model is model else self.final_model
        if cfg.compile and self.final_model is not model:
            self.compiled_final = torch.compile(self.final_model)
        forward = self.compiled
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            forward = nn.parallel.DistributedDataParallel(forward, device_ids=ids)
        self.forward: Callable[[torch.Tensor], torch.Tensor] = forward
        self.augment = (
            build_augmentations(cfg.augs, num_classes=len(self.classes), mean=self.mean, std=self.std)
            if cfg.augs
            else None
        )
        self.aug_generator = torch.Generator(device=self.device)

        self.epoch, self.step, self.batch_in_epoch, self.best_acc, self.elapsed = 0, 0, 0, -1.0, 0.0
        self.partial = {"loss_sum": 0.0, "seen": 0, "train_time": 0.0}  # of an epoch cut short by Ctrl-C
        if resuming:
            state, path = checkpoint.load_latest_state(self.run_dir)
            try:
                self.load_state(state)
                self.saved_at = checkpoint.describe_state(state)
            except (KeyError, ValueError, TypeError, RuntimeError) as err:  # another model's, or hand-made
                reason = " ".join(f"{type(err).__name__}: {err}".split())[:200]
                raise ZooError(f"Training state {path} does not fit this run ({reason})") from err
        self.stop_before_training()
        self.eval_batches = self.stop.common_count(len(self.test_loader))  # polled for a stop in evaluation

    def lock_run_dir(self, only_if_present: bool = False) -> None:
        """Rank 0 takes the run directory's lock; every rank raises RunInUse if another process holds it."""
        refused = None
        if self.dist.is_main and (self.run_dir.is_dir() or not only_if_present):
            try:
                self.lock.acquire(self.run_dir)
            except RunInUse as err:
                refused = str(err)
        refused = distributed.broadcast_object(refused)
        if refused:
            raise RunInUse(refused)

    def stop_before_training(self) -> None:
        """A stop signal during set-up (data loading, data-dependent init): nothing new to save."""
        if self.stop.now():
            saved = (self.run_dir / checkpoint.TRAINING_STATE).exists()
            raise TrainingInterrupted(
                f"Stopped by {self.stop.name} before the first step; nothing new to save. "
                + (
                    f"Resume with: zoo train --resume {self.run_dir}"
                    if saved
                    else "Run the same command again"
                )
                if self.dist.is_main
                else "",
                self.stop.signum or 2,
            )

    # -- state ----------------------------------------------------------------------------------------

    def state(self, partial: dict[str, float] | None = None) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "ema": self.average.state_dict() if self.average else {},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "batch_in_epoch": self.batch_in_epoch,
            "partial": dict(partial or self.partial),
            "best_acc": self.best_acc,
            "elapsed": self.elapsed + time.perf_counter() - self.started,
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state(self.device)
            if self.device.type == "cuda"
            else torch.empty(0),
            "config": json.dumps(self.cfg.to_dict()),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        if self.average:  # a state saved without an average starts it from the model
            self.average.load_state_dict(state.get("ema") or state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self.partial = dict(state["partial"])
        self.best_acc, self.elapsed = float(state["best_acc"]), float(state["elapsed"])
        torch.set_rng_state(state["rng_cpu"])
        if self.device.type == "cuda" and state["rng_cuda"].numel():
            torch.cuda.set_rng_state(state["rng_cuda"], self.device)

    def save(self, val_acc: float | None = None) -> None:
        """best.safetensors (when ``val_acc`` is a new best), model.safetensors, then last.pt.

        last.pt goes last: it is the commit point. A crash before it resumes from the previous state and
        replays the epoch, which writes the same files again.
        """
        if not self.dist.is_main:
            return
        with self.write_errors_explained():
            self.saver.wait()  # a background write of an older state finishes first
        if not self.weights_finite():
            self.check_finite(math.nan)
        is_best = val_acc is not None and val_acc > self.best_acc
        card = dict(
            model_name=self.cfg.model,
            model_kwargs=self.model_kwargs,
            dataset=self.cfg.dataset,
            classes=self.classes,
            mean=self.mean,
            std=self.std,
            input_size=self.input_size,
            crop_pct=self.crop_pct,
        )
        with self.write_errors_explained():
            if is_best:
                checkpoint.save_weights(self.run_dir / checkpoint.BEST_WEIGHTS, self.final_model, **card)
                self.best_acc = val_acc
            checkpoint.save_weights(self.run_dir / checkpoint.FINAL_WEIGHTS, self.final_model, **card)
            state = self.state()
            checkpoint.save_state(self.run_dir / checkpoint.TRAINING_STATE, state)
            self.saved_at = checkpoint.describe_state(state)

    def snapshot_if_due(self, loss_sum: torch.Tensor, seen: int, start: float) -> None:
        """--save-every: the state at this step copied to host memory, written by a background thread."""
        if not (self.dist.is_main and self.saver.enabled):
            return
        with self.write_errors_explained():
            if not self.saver.due(self.step):
                return
            partial = self.partial_with(loss_sum, seen, start)
            if not (math.isfinite(partial["loss_sum"]) and self.weights_finite()):
                return  # a diverged state is never saved; the next logging point reports it
            state = host_copy(self.state(partial))

            def write() -> None:
                checkpoint.save_state(self.run_dir / checkpoint.TRAINING_STATE, state)
                self.saved_at = checkpoint.describe_state(state)

            self.saver.submit(write)

    @contextlib.contextmanager
    def write_errors_explained(self) -> Any:
        """A failed checkpoint write, said with what is still on disk and what to do."""
        try:
            yield
        except checkpoint.CheckpointWriteError as err:
            kept = (
                f"the previous checkpoint ({self.saved_at}) is unchanged"
                if self.saved_at
                else "no checkpoint had been saved yet"
            )
            message = f"{err}; {kept}. Resume with: zoo train --resume {self.run_dir} once it can be written"
            raise checkpoint.CheckpointWriteError(message, err.path, err.reason) from err

    def weights_finite(self) -> bool:
        """Whether every floating-point weight and buffer is finite (one wait for the device)."""
        models = [self.model] + ([self.average.module] if self.average else [])
        tensors = [t for m in models for t in m.state_dict().values() if t.is_floating_point()]
        return bool(torch.stack(torch._foreach_norm(tensors)).isfinite().all()) if tensors else True

    def _out_of_memory(self, what: Callable[[], str], *, reading: bool = False) -> Any:
        """A context: out-of-memory inside it raised again as one line naming what ran out in ``what()``,
        what to change and what became of the checkpoint; any other error passes unchanged."""
        return said_in_one_line(lambda err: self._memory_error(err, what(), reading=reading))

    def _step_text(self) -> str:
        shape = "×".join(str(n) for n in self.input_size)
        per_rank = self.cfg.batch_size // self.dist.world_size
        return f"a training step of {self.cfg.model} (batch {per_rank} of {shape} images)"

    def _memory_error(self, err: BaseException, what: str, *, reading: bool) -> ZooError | None:
        options = []
        if reading:
            if self._reads_options["data_mode"]:
                options.append("--data-mode stream")
        elif self.cfg.batch_size > 1:
            options.append(f"--batch-size {self.cfg.batch_size // 2}")
        if self._reads_options["image_size"]:
            options.append("a smaller --image-size")
        saved = self.saved_state()
        if saved:
            state = f"the last checkpoint ({saved}) is intact: zoo train --resume {self.run_dir}"
        else:
            state = f"no checkpoint was written yet in {self.run_dir}"
        return memory_error(err, where=what, device=self.device, options=options, state=state)

    # -- training -------------------------------------------------------------------------------------

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # y: int64 labels, or soft targets (N, classes) from a mixing augmentation
        return F.cross_entropy(logits.float(), y, label_smoothing=self.cfg.label_smoothing)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(
            self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None
        ):
            loss = self.loss(self.forward(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.schedule.step()
        hold_finished_groups(self.optimizer, self.epoch)
        return loss.detach()

    def train_epoch(self, log: TrainingLog) -> tuple[float, float, float]:
        """One epoch from ``self.batch_in_epoch``: (mean train loss, images per second, seconds)."""
        self.model.train()
        self.train_loader.set_epoch(self.epoch)
        # a group's `epochs` end here, before this epoch's first step (the last step's schedule left its lr)
        hold_finished_groups(self.optimizer, self.epoch)
        if not self.dist.enabled:  # finished groups need no gradients (their lr is 0 from now on)
            freeze_finished_groups(self.optimizer, self.epoch)
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        seen = 0
        start = time.perf_counter()
        bar = log.progress(total=len(self.train_loader), initial=self.batch_in_epoch, epoch=self.epoch)
        for x, y in self.train_loader.iter_from(self.batch_in_epoch):
            if self.augment is not None:
                self.aug_generator.manual_seed(
                    batch_seed(self.cfg.seed, self.epoch, self.batch_in_epoch, self.dist.rank)
                )
                x, y = self.augment(x, y, generator=self.aug_generator)
            if self.step == 0 and self.dist.is_main:
                log.image_batch(x, self.mean, self.std)
            loss = self.train_step(x, y)
            if self.preflight is not None:  # looks once, after the first steps
                self.preflight.step_done(self.step + 1)
            loss_sum += loss * x.shape[0]
            seen += x.shape[0]
            self.step += 1
            self.batch_in_epoch += 1
            if self.average is not None:
                self.average.update(self.step, self.total_steps)
            bar.update(1)
            self._call("on_step_end")
            if self.step % self.cfg.log_every == 0:  # a logging point: the one place we wait for the device
                value = self.log_point(loss)
                self.check_finite(value)
                bar.set_postfix(loss=f"{value:.4f}", lr=f"{self.optimizer.param_groups[-1]['lr']:.3g}")
            if self.stop.poll():  # every rank at the same step
                bar.close()
                self.partial = self.partial_with(loss_sum, seen, start)
                self.stop_and_save()
            self.snapshot_if_due(loss_sum, seen, start)
        bar.close()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        # kept until the epoch's save: a stop during its evaluation saves it
        self.partial = self.partial_with(loss_sum, seen, start)
        totals = torch.tensor(
            [self.partial["loss_sum"], self.partial["seen"]], dtype=torch.float64, device=self.device
        )
        distributed.all_reduce_sum(totals)
        mean_loss = float(totals[0] / totals[1])
        self.check_finite(mean_loss)
        seconds = self.partial["train_time"]
        return mean_loss, float(totals[1]) / seconds, seconds

    def partial_with(self, loss_sum: torch.Tensor, seen: int, start: float) -> dict[str, float]:
        """The epoch's running totals (``partial``, saved with the state) with the steps since ``start``."""
        return {
            "loss_sum": self.partial["loss_sum"] + float(loss_sum),
            "seen": self.partial["seen"] + seen,
            "train_time": self.partial["train_time"] + time.perf_counter() - start,
        }

    def stop_and_save(self) -> None:
        """The agreed stop: one save of the state at this step boundary, then TrainingInterrupted."""
        with self.stop_signals.saving_now():
            self.save()
        where = f"epoch {self.epoch + 1}, step {self.step} ({self.batch_in_epoch}/{len(self.train_loader)})"
        message = (
            f"Stopped by {self.stop.name} in {where}; state saved. "
            f"Resume with: zoo train --resume {self.run_dir} (or the same command with --resume auto)"
        )
        raise TrainingInterrupted(message if self.dist.is_main else "", self.stop.signum or 2)

    def log_point(self, loss: torch.Tensor) -> float:
        """The loss averaged over ranks (one all-reduce)."""
        return float(distributed.all_reduce_sum(loss.float().clone())) / self.dist.world_size

    def saved_state(self) -> str | None:
        """Where the newest training state on disk stands, once a background write under way has ended
        (its own error, if any, is not what a failure message reports: the state before it is then the
        newest)."""
        with contextlib.suppress(Exception):
            self.saver.wait()
        return self.saved_at

    def check_finite(self, value: float) -> None:
        if not math.isfinite(value):
            saved = self.saved_state()
            kept = (
                f"the last checkpoint in {self.run_dir} ({saved}) is unchanged"
                if saved
                else "nothing was saved (no checkpoint before it)"
            )
            raise TrainingDiverged(
                f"The training loss became {value} in epoch {self.epoch + 1} (step {self.step}); stopped, "
                f"{kept}; try a lower --lr or --precision fp32"
            )

    def evaluate(self, tta: str = "none") -> Any:
        """Metrics of the evaluated model (the weight average, when there is one) on the test split."""
        from zoo_core.train.evaluate import evaluate

        self.test_loader.set_epoch(0)
        model = self.compiled_final
        name = "evaluation" if tta == "none" else f"evaluation with TTA ({tta})"
        batches = progress.track(
            self.stop.until_stopped(self.test_loader.iter_from(0), self.eval_batches),
            name,
            total=len(self.test_loader),
            unit="batch",
            enabled=self.dist.is_main,
        )
        with self._out_of_memory(lambda: f"{name} of {self.cfg.model} (batches of {self.eval_batch_size})"):
            return evaluate(
                model if tta == "none" else TestTimeAugmentation(model, tta),
                batches,
                num_classes=len(self.classes),
                autocast_dtype=self.autocast_dtype,
                device_type=self.device.type,
                reduce=distributed.all_reduce_sum,
            )

    def fit(self) -> dict[str, Any]:
        """Run the remaining epochs; returns the last epoch's metrics."""
        self.started = time.perf_counter()
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.cfg.save(self.run_dir / "config.json")
        log = TrainingLog(self.run_dir, self.cfg, enabled=self.dist.is_main, interactive=self.interactive)
        metrics: dict[str, Any] = {}
        try:
            with self.stop_signals.installed():
                metrics = self.run_epochs(log)
                self.stop.now()  # the last pending agreement, so no collective is left behind
        finally:
            with contextlib.suppress(Exception):  # an error of its own was raised at the last save
                self.saver.wait()
            log.close()
            self.lock.release()
        return metrics

    def run_epochs(self, log: TrainingLog) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        while self.epoch < self.cfg.epochs:
            with self._out_of_memory(self._step_text):  # in a step, its augmentation or its batch
                train_loss, img_per_s, _ = self.train_epoch(log)
            last = self.epoch + 1 == self.cfg.epochs
            if last and self.average is not None:
                self.average.finish()
            every = self.cfg.eval_every
            result = tta = None
            try:
                if last or (every and (self.epoch + 1) % every == 0):
                    result = self.evaluate()
                tta = self.evaluate(self.cfg.tta) if last and self.cfg.tta != "none" else None
            except StopAgreed:  # saved as "all steps of this epoch done": a resume evaluates again
                self.stop_and_save()
            metrics = {
                "epoch": self.epoch + 1,
                "step": self.step,
                "train_loss": train_loss,
                "val_loss": result and result.loss,  # None: not evaluated this epoch (--eval-every)
                "val_acc": result and result.top1,
                "val_acc5": result and result.top5,
                "lr": self.optimizer.param_groups[-1]["lr"],
                "img_per_s": img_per_s,
                "precision": self.precision.precision,  # what --precision auto chose here
                "time_s": self.elapsed + time.perf_counter() - self.started,
            }
            if tta is not None:  # the final score, over augmented views of each image
                metrics.update(tta=self.cfg.tta, tta_acc=tta.top1, tta_acc5=tta.top5)
            self.epoch += 1
            self.batch_in_epoch = 0
            self.partial = {"loss_sum": 0.0, "seen": 0, "train_time": 0.0}
            self.save(val_acc=result and result.top1)
            log.epoch_end(metrics)
            self._call("on_epoch_end", metrics)
        return metrics

    def _call(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:
            method = getattr(callback, event, None)
            if method is not None:
                method(self, *args)
