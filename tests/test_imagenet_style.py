"""ImageNet-style training of large ImageFolder images: random resized crops per image on the device, the
centre crop (crop_pct) in evaluation, prediction and the model card."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from zoo_core.cli import cli
from zoo_core.data.dataset import InMemoryDataset
from zoo_core.data.loader import make_loader
from zoo_core.data.ops import (
    center_crop,
    random_resized_crop,
    resized_crop,
    resized_crop_boxes,
    resized_crop_one,
)
from zoo_core.images import read_image
from zoo_core.train.checkpoint import read_card, save_weights
from zoo_plugins.datasets.imagefolder import decode_image, imagefolder


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("ZOO_CACHE", str(folder))
    return folder


def photo(seed: int, size: tuple[int, int] = (150, 200)) -> np.ndarray:
    """An H×W×3 picture: smooth noise, a red band on its left 20 columns, a blue one on its right 20."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size[0] // 10, size[1] // 10, 3), dtype=np.uint8)
    pixels = np.asarray(Image.fromarray(small).resize((size[1], size[0]), Image.Resampling.BILINEAR)).copy()
    pixels[:, :20] = (255, 0, 0)
    pixels[:, -20:] = (0, 0, 255)
    return pixels


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A tree of 200×150 PNG photos, two classes, 8 training and 4 test images."""
    root = tmp_path / "photos"
    for split, count in (("train", 8), ("test", 4)):
        for k in range(count):
            path = root / split / ("cat" if k % 2 else "dog") / f"{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(photo(k + (100 if split == "test" else 0))).save(path)
    return root


# -- the batched kernels against torchvision ------------------------------------------------------------


def test_resized_crop_equals_torchvision_on_each_image_alone() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (48, 3, 40, 52), dtype=torch.uint8, generator=g)
    boxes = resized_crop_boxes(48, 40, 52, g)
    out = resized_crop(x.float(), boxes, (24, 30))
    assert out.shape == (48, 3, 24, 30) and out.dtype == torch.float32
    levels = resized_crop(x, boxes, (24, 30))  # uint8 in, uint8 out: the float result rounded
    assert levels.dtype == torch.uint8 and torch.equal(levels, out.round().to(torch.uint8))
    for i in range(48):
        top, left, h, w = boxes[i].tolist()
        exact = TF.resized_crop(x[i].float(), top, left, h, w, [24, 30], antialias=False)
        assert (exact - out[i]).abs().max() < 1e-3
        one = resized_crop_one(x[i], boxes[i].tolist(), (24, 30))  # a worker's: torch's uint8 kernel
        assert (one.int() - levels[i].int()).abs().max() <= 1


def test_an_upscaled_box_and_the_whole_image_resize_like_torchvision() -> None:
    x = torch.arange(2 * 1 * 6 * 8, dtype=torch.float32).view(2, 1, 6, 8)
    boxes = torch.tensor([[1, 2, 3, 4], [0, 0, 6, 8]])
    out = resized_crop(x, boxes, (9, 11))
    for i, (top, left, h, w) in enumerate(boxes.tolist()):
        exact = TF.resized_crop(x[i], top, left, h, w, [9, 11], antialias=False)
        assert torch.allclose(out[i], exact, atol=1e-4)


def test_boxes_follow_torchvisions_rule() -> None:
    g = torch.Generator().manual_seed(1)
    boxes = resized_crop_boxes(20000, 256, 256, g)
    top, left, h, w = boxes.T
    assert ((top >= 0) & (left >= 0) & (top + h <= 256) & (left + w <= 256) & (h > 0) & (w > 0)).all()
    share = (h * w).float() / 256**2
    assert share.min() >= 0.075 and share.max() <= 1.0
    aspect = (w / h).float()
    assert aspect.min() >= 0.7 and aspect.max() <= 1.45  # 3/4 … 4/3 up to rounding of small boxes
    torch.manual_seed(1)  # torchvision's own draws, for the distribution of the area share
    ref = torch.tensor(
        [
            math.prod(
                v2.RandomResizedCrop.get_params(torch.empty(1, 256, 256), (0.08, 1.0), (3 / 4, 4 / 3))[2:]
            )
            for _ in range(4000)
        ]
    )
    ref_share = ref.float() / 256**2
    for q in (0.1, 0.5, 0.9):
        assert abs(share.quantile(q) - ref_share.quantile(q)) < 0.03


def test_an_image_no_draw_fits_gets_the_centre_crop_with_its_ratio_clamped() -> None:
    boxes = resized_crop_boxes(64, 4, 400, torch.Generator().manual_seed(0), scale=(0.9, 1.0))
    assert boxes.tolist() == [[0, 197, 4, 5]] * 64  # torchvision: w = round(4 × 4/3) = 5, centred


def test_the_same_seed_gives_the_same_crops_and_another_seed_others() -> None:
    x = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    first = random_resized_crop(x, (24, 24), torch.Generator().manual_seed(5))
    again = random_resized_crop(x, (24, 24), torch.Generator().manual_seed(5))
    other = random_resized_crop(x, (24, 24), torch.Generator().manual_seed(6))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_center_crop_takes_torchvisions_centre() -> None:
    x = torch.arange(2 * 3 * 146 * 150, dtype=torch.int32).view(2, 3, 146, 150)
    assert torch.equal(center_crop(x, (128, 131)), TF.center_crop(x, [128, 131]))


# -- imagefolder ----------------------------------------------------------------------------------------


def test_large_images_are_stored_for_the_crop_and_keep_their_aspect(photos: Path) -> None:
    data = imagefolder(root=photos, split="train", image_size=128)
    assert data.images.shape == (8, 3, 146, 146)  # 128 / 0.875 = 146.3
    assert data.crop_pct == 0.875 and data.input_size == (3, 128, 128)
    assert data.recipe["random_resized_crop"] is True and data.recipe["crop_padding"] == 0
    assert data.recipe["flip"] is True and data.recipe["label_smoothing"] == 0.1
    # shorter side resized, the centre kept: the 20-column bands at the long sides (25 px each) are cut off
    red = (data.images[:, 0] > 200) & (data.images[:, 1] < 50) & (data.images[:, 2] < 50)
    assert not red[..., :5].all(dim=1).any()  # no wholly red column (the noise may hold red pixels)
    picture = torch.from_numpy(np.array(Image.open(photos / "train" / "cat" / "1.png"))).permute(2, 0, 1)
    # the first file (classes sorted): its centre 150×150, resized by the one rule (antialiased bilinear)
    expected = TF.resize(picture[:, :, 25:175], [146, 146], antialias=True)
    assert torch.equal(data.images[0], expected)


def test_the_plan_line_says_how_large_images_are_cut(photos: Path, capsys) -> None:
    imagefolder(root=photos, split="test", image_size=128)
    err = capsys.readouterr().err
    assert "ImageNet-style" in err and "stored at 146×146" in err and "centre 128×128 (crop_pct 0.875)" in err


def test_small_images_are_unchanged(photos: Path) -> None:
    data = imagefolder(root=photos, split="train", image_size=64)
    assert data.images.shape == (8, 3, 64, 64) and data.crop_pct == 1.0 and data.input_size == (3, 64, 64)
    assert "random_resized_crop" not in data.recipe and data.recipe["crop_padding"] == 4


def test_crop_pct_1_keeps_the_whole_picture_at_the_models_size(photos: Path) -> None:
    data = imagefolder(root=photos, split="train", image_size=128, crop_pct=1)
    assert data.images.shape == (8, 3, 128, 128) and data.input_size == (3, 128, 128)
    red = (data.images[:, 0] > 200) & (data.images[:, 1] < 50)
    assert red[..., :5].all()  # squashed whole: the band is still there
    assert data.recipe["random_resized_crop"] is True


@pytest.mark.parametrize("bad", [0, 1.5, -0.2, "half"])
def test_a_bad_crop_pct_is_bad_input(photos: Path, bad) -> None:
    from zoo_core.errors import BadInputError

    with pytest.raises(BadInputError, match="crop_pct"):
        imagefolder(root=photos, split="train", image_size=128, crop_pct=bad)


def test_the_streamed_set_reads_the_same_stored_images(photos: Path) -> None:
    held = imagefolder(root=photos, split="train", image_size=128)
    streamed = imagefolder(root=photos, split="train", image_size=128, data_mode="stream", cache=False)
    assert streamed.input_size == (3, 128, 128) and streamed.crop_pct == 0.875
    assert streamed.recipe == held.recipe
    for i in range(len(held)):
        image, label = streamed[i]
        assert torch.equal(image, held.images[i]) and label == held.labels[i]


@pytest.mark.parametrize("flip", [False, True])
def test_streamed_training_batches_equal_the_held_ones_for_the_same_seed(photos: Path, flip: bool) -> None:
    held = imagefolder(root=photos, split="train", image_size=128)
    streamed = imagefolder(root=photos, split="train", image_size=128, data_mode="stream", cache=False)
    options = dict(batch_size=4, device="cpu", train=True, resized_crop=True, flip=flip, seed=7)
    memory = make_loader(held, **options, mean=held.mean, std=held.std)
    stream = make_loader(streamed, **options, mean=held.mean, std=held.std, num_workers=1)
    assert stream.augment_in_workers  # the CPU default: crops and flips cut in the workers
    for epoch in (0, 1):
        memory.set_epoch(epoch)
        stream.set_epoch(epoch)
        pairs = list(zip(memory, stream, strict=True))
        assert all(torch.equal(a, b) and torch.equal(ya, yb) for (a, ya), (b, yb) in pairs)


def test_the_streamed_sets_statistics_equal_the_held_ones_when_the_sample_is_every_image(
    photos: Path,
) -> None:
    held = imagefolder(root=photos, split="train", image_size=128)
    streamed = imagefolder(root=photos, split="train", image_size=128, data_mode="stream", cache=False)
    assert np.allclose(streamed.mean, held.mean, atol=1e-6) and np.allclose(streamed.std, held.std, atol=1e-6)


def test_the_statistics_sample_sends_back_numbers_not_images(photos: Path) -> None:
    # 512 photos at 2048 px would be 8 GB of arrays: each worker reduces its images to per-channel sums
    from zoo_plugins.datasets.imagefolder_stream import channel_moments

    names = ["cat/1.png", "dog/0.png", "missing.png"]
    out = channel_moments(str(photos / "train"), names, (146, 146), 3, True)
    assert out[2] is None
    count, total, squares = out[0]
    pixels = decode_image(photos / "train" / "cat" / "1.png", (146, 146), 3, True).reshape(-1, 3)
    pixels = pixels.astype(np.int64)
    assert count == 146 * 146 and total.tolist() == pixels.sum(0).tolist()
    assert squares.tolist() == (pixels**2).sum(0).tolist() and total.nbytes + squares.nbytes == 48


# -- the loaders ----------------------------------------------------------------------------------------


def stored_set(n: int = 12) -> InMemoryDataset:
    images = torch.randint(
        0, 256, (n, 3, 146, 146), dtype=torch.uint8, generator=torch.Generator().manual_seed(3)
    )
    return InMemoryDataset(
        images, torch.arange(n) % 2, ["a", "b"], mean=(0.0,) * 3, std=(1 / 255,) * 3, crop_pct=0.875
    )


def test_evaluation_batches_are_the_centre_crop() -> None:
    data = stored_set()
    loader = make_loader(data, batch_size=4, device="cpu", train=False)
    x, _ = next(iter(loader))
    assert x.shape == (4, 3, 128, 128)
    assert torch.equal(x, data.images[:4, :, 9:137, 9:137].float())  # normalisation is ×1 here


@pytest.mark.parametrize("stream", [False, True])
def test_training_batches_are_random_resized_crops_replayed_per_seed_and_epoch(stream: bool) -> None:
    data = stored_set()
    if stream:
        from zoo_core.data.loader import StreamLoader, _TensorPairs

        def build():
            return StreamLoader(
                _TensorPairs(data.images, data.labels),
                batch_size=4,
                device="cpu",
                train=True,
                mean=data.mean,
                std=data.std,
                size=(128, 128),
                resized_crop=True,
                num_workers=0,
            )
    else:

        def build():
            return make_loader(data, batch_size=4, device="cpu", train=True, resized_crop=True)

    first, again = build(), build()
    a = [x for x, _ in first]
    b = [x for x, _ in again]
    assert all(x.shape == (4, 3, 128, 128) for x in a)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    again.set_epoch(1)
    assert not torch.equal(a[0], next(iter(again))[0])
    centre = make_loader(data, batch_size=4, device="cpu", train=False)
    assert not any(torch.equal(x, y) for x, y in zip(a, [x for x, _ in centre], strict=False))


def worker_crop_loader(
    data: InMemoryDataset,
    augment_in_workers: bool | None,
    workers: int = 1,
    seed: int = 0,
    **options,
):
    from zoo_core.data.loader import StreamLoader, _TensorPairs

    return StreamLoader(
        _TensorPairs(data.images, data.labels),
        batch_size=4,
        device="cpu",
        train=True,
        shuffle=False,
        mean=data.mean,
        std=data.std,
        size=(128, 128),
        resized_crop=True,
        num_workers=workers,
        seed=seed,
        augment_in_workers=augment_in_workers,
        **options,
    )


def test_on_a_cpu_crops_are_cut_in_the_workers_for_streamed_and_held_sets_alike() -> None:
    data = stored_set()
    loader = worker_crop_loader(data, None)  # the default on a CPU
    assert loader.augment_in_workers and not loader.transform.resized_crop
    assert not worker_crop_loader(data, None, workers=0).augment_in_workers  # no workers: on the batch
    on_batch = worker_crop_loader(data, False)
    assert not on_batch.augment_in_workers
    held = make_loader(data, batch_size=4, device="cpu", train=True, shuffle=False, resized_crop=True)
    assert held.augment_in_workers  # an in-memory set on a CPU too
    for epoch in (0, 2):
        for one in (loader, on_batch, held):
            one.set_epoch(epoch)
        got = [x for x, _ in loader]
        assert all(x.shape == (4, 3, 128, 128) for x in got)
        assert all(torch.equal(p, q) for p, q in zip(got, [x for x, _ in held], strict=True))
        # the same boxes cut on the batch: torch's uint8 kernel against the float gathers, within a level
        for p, q in zip(got, [x for x, _ in on_batch], strict=True):
            assert (p - q).abs().max() <= 1 + 1e-4 and (p - q).abs().mean() < 0.4


def test_worker_crops_replay_per_seed_epoch_and_resumed_batch() -> None:
    data = stored_set()
    first = [x for x, _ in worker_crop_loader(data, True)]
    again = worker_crop_loader(data, True)
    assert all(torch.equal(p, q) for p, q in zip(first, [x for x, _ in again], strict=True))
    assert torch.equal(next(iter(again.iter_from(2)))[0], first[2])  # resumed mid-epoch: the same crops
    again.set_epoch(1)
    assert not torch.equal(next(iter(again))[0], first[0])
    other = worker_crop_loader(data, True, seed=1)
    assert not torch.equal(next(iter(other))[0], first[0])


def test_workers_flip_as_the_batch_would_and_stack_channels_last() -> None:
    data = stored_set()
    flipped = worker_crop_loader(data, True, flip=True, channels_last=True)
    assert flipped.augment_in_workers and not flipped.transform.flip  # the main process flips nothing
    batches = [x for x, _ in flipped]
    assert all(x.is_contiguous(memory_format=torch.channels_last) for x in batches)
    held = make_loader(
        data, batch_size=4, device="cpu", train=True, shuffle=False, resized_crop=True, flip=True
    )
    assert all(torch.equal(p, q) for p, q in zip(batches, [x for x, _ in held], strict=True))
    plain = torch.cat([x for x, _ in worker_crop_loader(data, True)])  # no flips: some images differ
    assert not torch.equal(torch.cat(batches), plain)


def test_alternating_flips_stay_with_the_main_process() -> None:
    data = stored_set()
    loader = worker_crop_loader(data, True, flip=True, alternate_flip=True)
    assert loader.augment_in_workers  # the crops still are cut in the workers
    assert loader.transform.alternate_flip and loader.transform.flip


def test_a_data_init_sees_the_evaluation_view() -> None:
    data = stored_set()
    loader = make_loader(data, batch_size=4, device="cpu", train=True, resized_crop=True)
    assert torch.equal(loader.first_images(3), data.images[:3, :, 9:137, 9:137].float())


# -- the model card: eval, predict, export ----------------------------------------------------------------


def test_the_card_stores_crop_pct_and_old_files_read_as_whole_pictures(tmp_path: Path) -> None:
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(2))
    net(torch.zeros(1, 3, 4, 4))
    card = dict(
        model_name="m",
        model_kwargs={},
        dataset="d",
        classes=["a", "b"],
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        input_size=(3, 4, 4),
    )
    save_weights(tmp_path / "new.safetensors", net, **card, crop_pct=0.875)
    assert read_card(tmp_path / "new.safetensors").crop_pct == 0.875
    save_weights(tmp_path / "old.safetensors", net, **card)
    assert read_card(tmp_path / "old.safetensors").crop_pct == 1.0


def test_predict_reads_an_image_as_the_evaluation_saw_it(photos: Path) -> None:
    data = imagefolder(root=photos, split="train", image_size=128)
    image = read_image(photos / "train" / "cat" / "1.png", (3, 128, 128), crop_pct=0.875)
    assert torch.equal(image, data.images[0, :, 9:137, 9:137])


@pytest.mark.slow
def test_zoo_train_eval_predict_and_export_an_imagenet_style_run(photos: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    runner = CliRunner()
    args = [
        "train",
        "imagefolder",
        "lenet",
        "--data-dir",
        str(photos),
        "--image-size",
        "128",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--out",
        str(run),
        "--no-tensorboard",
    ]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["random_resized_crop"] is True and config["crop_padding"] == 0
    card = read_card(run / "best.safetensors")
    assert card.crop_pct == 0.875 and card.input_size == (3, 128, 128)
    result = runner.invoke(cli, ["eval", str(run), "--json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["predict", str(run), str(photos / "test" / "dog" / "0.png"), "--json"])
    assert result.exit_code == 0, result.output
    pytest.importorskip("onnxruntime")
    from zoo_core.model_export import read_onnx_card

    result = runner.invoke(cli, ["export-model", str(run), "--output", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert read_onnx_card(tmp_path / "m.onnx")["crop_pct"] == "0.875"
