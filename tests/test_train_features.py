"""The Trainer's generic features, each against a hand computation: weight averaging, test-time
augmentation, the alternating flip, parameter groups, the linear schedule, model-level recipes."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from zoo_core.cli import cli
from zoo_core.data.loader import DeviceLoader, StreamLoader
from zoo_core.errors import BadInputError
from zoo_core.train.config import TrainConfig, merged_recipe
from zoo_core.train.ema import WeightAverage
from zoo_core.train.optim import (
    freeze_finished_groups,
    hold_finished_groups,
    linear_factor,
    make_optimizer,
    make_schedule,
)
from zoo_core.train.tta import TestTimeAugmentation, shift

# -- weight averaging ----------------------------------------------------------------------------------------


def scalar_model(value: float) -> nn.Module:
    model = nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(value)
    return model


def test_the_average_follows_a_hand_computation():
    model = scalar_model(1.0)
    average = WeightAverage(model, 0.5, every=2, warmup=1.0)
    expected, total = 1.0, 4
    for step, weight in zip([1, 2, 3, 4], [2.0, 3.0, 5.0, 7.0], strict=True):
        model.weight.data.fill_(weight)
        average.update(step, total)
        if step % 2 == 0:
            decay = 0.5 * (step / total) ** 1.0
            expected = decay * expected + (1 - decay) * weight
        assert average.module.weight.item() == pytest.approx(expected)
    # steps 2 and 4: decay 0.25 then 0.5 → 0.25·1 + 0.75·3 = 2.5, then 0.5·2.5 + 0.5·7 = 4.75
    assert expected == pytest.approx(4.75)
    assert model.weight.item() == 7.0  # the model itself is untouched


def test_lookahead_restarts_the_model_from_the_average():
    model = scalar_model(0.0)
    average = WeightAverage(model, 0.75, lookahead=True)
    model.weight.data.fill_(4.0)
    average.update(1, 10)
    assert average.module.weight.item() == pytest.approx(1.0)  # 0.75·0 + 0.25·4
    assert model.weight.item() == pytest.approx(1.0)


def test_buffers_are_averaged_and_counters_copied():
    model = nn.BatchNorm1d(2)
    average = WeightAverage(model, 0.5)
    model.running_mean.fill_(2.0)
    model.num_batches_tracked.fill_(7)
    average.update(1, 1)
    assert torch.allclose(average.module.running_mean, torch.tensor([1.0, 1.0]))
    assert average.module.num_batches_tracked.item() == 7


def test_a_decay_outside_zero_one_is_refused():
    with pytest.raises(ValueError):
        WeightAverage(scalar_model(0.0), 1.0)


# -- test-time augmentation ----------------------------------------------------------------------------------


@pytest.fixture
def classifier() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(5)).eval()


def test_shift_moves_the_image_down_and_right():
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).view(2, 3, 5, 5)
    assert torch.equal(shift(x, 1)[..., 1:, 1:], x[..., :-1, :-1])
    assert torch.equal(shift(x, -1)[..., :-1, :-1], x[..., 1:, 1:])
    assert torch.equal(shift(x, 1)[..., 0, 1:], x[..., 1, :-1])  # the border row is reflected


@torch.no_grad()
def test_flip_tta_is_the_mean_of_the_two_passes(classifier):
    x = torch.randn(3, 3, 8, 8)
    expected = (classifier(x) + classifier(x.flip(-1))) / 2
    assert torch.allclose(TestTimeAugmentation(classifier, "flip")(x), expected, atol=1e-6)


@torch.no_grad()
def test_flip_translate_tta_weights_the_six_passes(classifier):
    x = torch.randn(3, 3, 8, 8)
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    up_left, down_right = padded[..., 2:, 2:], padded[..., :-2, :-2]

    def pair(v: torch.Tensor) -> torch.Tensor:
        return (classifier(v) + classifier(v.flip(-1))) / 2

    expected = 0.5 * pair(x) + 0.25 * pair(up_left) + 0.25 * pair(down_right)
    assert torch.allclose(TestTimeAugmentation(classifier, "flip-translate")(x), expected, atol=1e-6)


@torch.no_grad()
def test_no_tta_is_the_model(classifier):
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(TestTimeAugmentation(classifier, "none")(x), classifier(x))


# -- the alternating flip ------------------------------------------------------------------------------------


def asymmetric_images(n: int) -> torch.Tensor:
    """Image i: a ramp along the width (so a mirror is visible) and its index in every pixel of channel 1."""
    images = torch.zeros(n, 2, 4, 6, dtype=torch.uint8)
    images[:, 0] = torch.arange(6, dtype=torch.uint8) * 10
    images[:, 1] = torch.arange(n, dtype=torch.uint8).view(n, 1, 1)
    return images


def flips_by_image(loader, epoch: int) -> dict[int, bool]:
    """For each image seen in ``epoch``: was it mirrored? (read from the ramp, identified by channel 1)"""
    loader.set_epoch(epoch)
    seen = {}
    for x, _ in loader:
        for image in x:
            index = round(float(image[1, 0, 0]))
            seen[index] = bool(image[0, 0, 0] > image[0, 0, -1])
    return seen


def loader_of(images: torch.Tensor, **options) -> DeviceLoader:
    return DeviceLoader(
        images,
        torch.zeros(len(images), dtype=torch.int64),
        batch_size=5,
        device="cpu",
        mean=(0, 0),
        std=(1 / 255, 1 / 255),  # x = the pixel values
        train=True,
        drop_last=False,
        seed=3,
        flip=True,
        alternate_flip=True,
        **options,
    )


def test_alternating_flip_mirrors_each_image_every_other_epoch():
    loader = loader_of(asymmetric_images(40))
    epochs = [flips_by_image(loader, e) for e in range(4)]
    assert all(len(e) == 40 for e in epochs)
    first = epochs[0]
    assert 10 <= sum(first.values()) <= 30  # a fair coin per image in the first epoch
    for e, flips in enumerate(epochs):
        # the rule: mirrored in epoch e exactly when its first-epoch coin differs from "e is odd"
        assert flips == {i: first[i] != bool(e % 2) for i in first}
    assert flips_by_image(loader_of(asymmetric_images(40)), 0) == first  # a function of the seed


def test_alternating_flip_is_the_same_when_streamed():
    images = asymmetric_images(20)

    class Streamed(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, i: int):
            return images[i], 0

    streamed = StreamLoader(
        Streamed(),
        batch_size=5,
        device="cpu",
        mean=(0, 0),
        std=(1 / 255, 1 / 255),
        train=True,
        drop_last=False,
        seed=3,
        flip=True,
        alternate_flip=True,
        num_workers=0,
    )
    for epoch in (0, 1):
        assert flips_by_image(streamed, epoch) == flips_by_image(loader_of(images), epoch)


# -- parameter groups and the schedule ---------------------------------------------------------------------


class TwoPart(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(3, 3)
        self.norm = nn.BatchNorm1d(3)
        self.stem = nn.Linear(3, 3)


def config(**overrides) -> TrainConfig:
    return TrainConfig(dataset="digits", model="lenet", lr=0.1, weight_decay=0.01, **overrides).with_recipe(
        {}
    )


def test_param_groups_scale_lr_and_weight_decay_per_pattern():
    model = TwoPart()
    cfg = config(param_groups=[{"params": "norm.*", "lr_scale": 10, "weight_decay_scale": 0.5}])
    groups = make_optimizer(model, cfg).param_groups
    assert [len(g["params"]) for g in groups] == [2, 2, 2]  # norm.*, then weights with decay, then biases
    assert groups[0]["lr"] == pytest.approx(1.0) and groups[0]["weight_decay"] == pytest.approx(0.005)
    assert groups[1]["weight_decay"] == 0.01 and groups[2]["weight_decay"] == 0.0


def test_a_group_with_epochs_stops_training_after_them():
    model = TwoPart()
    cfg = config(param_groups=[{"params": "stem.*", "epochs": 2}], schedule="constant")
    optimizer = make_optimizer(model, cfg)
    hold_finished_groups(optimizer, epoch=1)
    assert optimizer.param_groups[0]["lr"] == 0.1
    hold_finished_groups(optimizer, epoch=2)
    assert optimizer.param_groups[0]["lr"] == 0.0 and optimizer.param_groups[1]["lr"] == 0.1
    before = model.stem.weight.detach().clone()
    model.stem(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    assert torch.equal(model.stem.weight, before)


def test_a_finished_group_stops_taking_gradients_and_the_rest_train_as_before():
    def steps(freeze: bool) -> TwoPart:
        torch.manual_seed(0)
        model = TwoPart()
        cfg = config(param_groups=[{"params": "stem.*", "epochs": 1}], schedule="constant")
        optimizer = make_optimizer(model, cfg)
        for epoch in range(3):
            if freeze:
                freeze_finished_groups(optimizer, epoch)
            assert model.stem.weight.requires_grad == (not freeze or epoch < 1)
            assert model.body.weight.requires_grad  # a group without epochs keeps training
            x = torch.randn(4, 3, generator=torch.Generator().manual_seed(epoch))
            loss = model.body(model.stem(x)).square().sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            hold_finished_groups(optimizer, epoch + 1)
        return model

    frozen, held = steps(True), steps(False)
    pairs = zip(frozen.state_dict().values(), held.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([{"params": "nothing.*"}], "matches no trainable parameter"),
        ([{"params": "norm.*", "lr": 3}], "unknown key"),
        ([{"params": "norm.*", "lr_scale": -1}], "lr_scale must be a number"),
        ([{"lr_scale": 2}], "needs a 'params' pattern"),
    ],
)
def test_bad_param_groups_are_refused_with_a_reason(groups, message):
    with pytest.raises(BadInputError, match=message):
        make_optimizer(TwoPart(), config(param_groups=groups))


def test_the_linear_schedule_warms_up_then_decays():
    total = 100
    factors = [linear_factor(s, total, warmup=0.2, start=0.2, end=0.07) for s in range(total + 1)]
    assert factors[0] == pytest.approx(0.2) and factors[10] == pytest.approx(0.6)
    assert factors[20] == pytest.approx(1.0) and factors[100] == pytest.approx(0.07)
    assert factors[60] == pytest.approx(1.0 + (0.07 - 1.0) * 0.5)
    model = TwoPart()
    optimizer = make_optimizer(model, config(param_groups=[{"params": "norm.*", "lr_scale": 10}]))
    schedule = make_schedule(optimizer, "linear:warmup=0.2,start=0.2,end=0.07", total)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1.0 * 0.2)  # every group from its own base
    assert optimizer.param_groups[1]["lr"] == pytest.approx(0.1 * 0.2)
    for _ in range(20):
        optimizer.step()
        schedule.step()
    assert optimizer.param_groups[1]["lr"] == pytest.approx(0.1)


def test_a_bad_schedule_option_is_refused():
    with pytest.raises(BadInputError, match="unknown option 'peak'"):
        config(schedule="linear:peak=3")
    with pytest.raises(BadInputError, match="--schedule must be one of"):
        config(schedule="zigzag")


# -- recipes -------------------------------------------------------------------------------------------------


def test_a_model_recipe_overrides_the_data_set_recipe_and_options_win():
    dataset_meta = {"recipe": {"lr": 0.1, "epochs": 30, "flip": True}}
    model_meta = {"recipe": {"cifar10": {"lr": 1.5, "epochs": 10}, "mnist": {"lr": 9.0}}}
    recipe = merged_recipe("cifar10", dataset_meta, model_meta)
    assert recipe == {"lr": 1.5, "epochs": 10, "flip": True}
    cfg = TrainConfig(dataset="cifar10", model="m", epochs=3).with_recipe(recipe)
    assert (cfg.epochs, cfg.lr, cfg.flip) == (3, 1.5, True)
    assert merged_recipe("svhn", {}, model_meta) == {}


def test_a_recipe_names_augmentations_and_options_or_none_win():
    recipe = {"augs": ["trivialaugment", "cutout:size=16"]}
    assert TrainConfig(dataset="cifar10", model="m").with_recipe(recipe).augs == recipe["augs"]
    assert TrainConfig(dataset="cifar10", model="m", augs=["mixup"]).with_recipe(recipe).augs == ["mixup"]
    assert TrainConfig(dataset="cifar10", model="m", augs=[]).with_recipe(recipe).augs == []  # --aug none
    assert TrainConfig(dataset="cifar10", model="m").with_recipe({}).augs == []
    with pytest.raises(BadInputError, match="list of --aug specs"):
        TrainConfig(dataset="cifar10", model="m").with_recipe({"augs": "cutout"})


def test_resnet18_trains_cifar10_with_its_recipes_policy_and_cutout(catalog):
    from zoo_core.catalog import get_catalog

    models, datasets = get_catalog().models, get_catalog().datasets
    recipe = merged_recipe("cifar10", datasets.get("cifar10").meta, models.get("resnet18").meta)
    cfg = TrainConfig(dataset="cifar10", model="resnet18").with_recipe(recipe)
    assert cfg.augs == ["trivialaugment", "cutout:size=16"] and cfg.epochs == 100
    assert cfg.label_smoothing == 0.1 and cfg.crop_padding == 4 and cfg.flip
    other = merged_recipe("cifar10", datasets.get("cifar10").meta, models.get("resnet34").meta)
    assert TrainConfig(dataset="cifar10", model="resnet34").with_recipe(other).augs == []


def run_with_recipe_augs(tmp_path, catalog, *augs: str):
    catalog.models.register(
        "tiny-linear",
        lambda *, num_classes, in_chans=1, **kw: nn.Sequential(
            nn.Flatten(), nn.Linear(in_chans * 1024, num_classes)
        ),
        recipe={"digits": {"augs": ["cutout:size=4"], "epochs": 1, "batch_size": 64}},
    )
    run = tmp_path / "run"
    args = ["train", "digits", "tiny-linear", "--out", str(run), "--no-tensorboard", *augs]
    return CliRunner().invoke(cli, args), run


def test_zoo_train_takes_the_recipes_augmentations(tmp_path, catalog):
    result, run = run_with_recipe_augs(tmp_path, catalog)
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["augs"] == ["cutout:size=4"]


def test_aug_none_trains_without_the_recipes_augmentations(tmp_path, catalog):
    result, run = run_with_recipe_augs(tmp_path, catalog, "--aug", "none")
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["augs"] == []


def test_aug_none_beside_another_aug_exits_2(tmp_path, catalog):
    result, run = run_with_recipe_augs(tmp_path, catalog, "--aug", "none", "--aug", "mixup")
    assert result.exit_code == 2 and "--aug none" in result.output and not run.exists()


def test_zoo_info_shows_fastnet_recipe(catalog):
    result = CliRunner().invoke(cli, ["info", "fastnet"])
    assert result.exit_code == 0, result.output
    assert "recipe" in result.output and "cifar10" in result.output and "flip-translate" in result.output


@pytest.mark.parametrize(
    ("option", "value"),
    [("--ema", "2"), ("--tta", "nosuch"), ("--ema-mode", "median"), ("--ema-every", "0")],
)
def test_bad_feature_options_exit_2_naming_the_option(option, value):
    result = CliRunner().invoke(cli, ["train", "digits", "lenet", option, value])
    assert result.exit_code == 2
    assert option in result.output


def test_a_bad_param_group_option_exits_2():
    result = CliRunner().invoke(cli, ["train", "digits", "lenet", "--param-group", "nothing.*:lr_scale=2"])
    assert result.exit_code == 2, result.output
    assert "matches no trainable parameter" in result.output


def test_zoo_eval_uses_the_runs_tta_unless_told_otherwise(tmp_path, catalog):
    run = tmp_path / "run"
    options = ["--epochs", "1", "--batch-size", "256", "--tta", "flip", "--no-tensorboard"]
    trained = CliRunner().invoke(cli, ["train", "digits", "lenet", "--out", str(run), *options])
    assert trained.exit_code == 0, trained.output
    final = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert final["tta"] == "flip"
    own = CliRunner().invoke(cli, ["eval", str(run), "--json"])
    assert own.exit_code == 0, own.output
    assert json.loads(own.stdout)["tta"] == "flip"
    assert json.loads(own.stdout)["top1"] == pytest.approx(final["tta_acc"])
    plain = CliRunner().invoke(cli, ["eval", str(run), "--json", "--tta", "none"])
    assert json.loads(plain.stdout)["tta"] == "none"
    assert json.loads(plain.stdout)["top1"] == pytest.approx(final["val_acc"])


@pytest.mark.parametrize("streamed", [False, True])
def test_reflect_padding_crops_show_only_image_pixels(streamed):
    images = torch.randint(1, 256, (16, 3, 6, 6), dtype=torch.uint8)  # no zero anywhere
    common = dict(batch_size=16, device="cpu", mean=(0, 0, 0), std=(1 / 255,) * 3, train=True, seed=1)
    options = dict(crop_padding=2, padding_mode="reflect", **common)
    if streamed:
        data = torch.utils.data.TensorDataset(images, torch.zeros(16, dtype=torch.int64))
        loader = StreamLoader(data, num_workers=0, **options)
    else:
        loader = DeviceLoader(images, torch.zeros(16, dtype=torch.int64), **options)
    ((x, _),) = list(loader)
    assert x.min() >= 1  # zero padding would show 0s at the borders of shifted crops
    zeros = DeviceLoader(images, torch.zeros(16, dtype=torch.int64), crop_padding=2, **common)
    ((z, _),) = list(zeros)
    assert z.min() == 0


# -- evaluation every N epochs -------------------------------------------------------------------------------


@pytest.mark.parametrize(("every", "evaluated"), [(0, [3]), (2, [2, 3]), (1, [1, 2, 3])])
def test_eval_every_evaluates_those_epochs_and_always_the_last(tmp_path, catalog, every, evaluated):
    run = tmp_path / "run"
    options = ["--epochs", "3", "--batch-size", "256", "--eval-every", str(every), "--no-tensorboard"]
    result = CliRunner().invoke(cli, ["train", "digits", "lenet", "--out", str(run), *options])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines if m["val_acc"] is not None] == evaluated
    skipped = [m for m in lines if m["val_acc"] is None]
    assert all(m["val_loss"] is None and m["val_acc5"] is None for m in skipped)
    assert result.output.count("not evaluated") == 3 - len(evaluated)
    assert (run / "best.safetensors").is_file()  # the final evaluation still picks a best


def test_a_negative_eval_every_exits_2():
    result = CliRunner().invoke(cli, ["train", "digits", "lenet", "--eval-every", "-1"])
    assert result.exit_code == 2 and "--eval-every" in result.output
