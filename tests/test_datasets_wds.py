"""wds: WebDataset tar shards written here (by tarfile, as other tools write them), read shard by shard:
every sample once per epoch across ranks and workers, shuffled by (seed, epoch), resumed exactly at any
batch, damaged members skipped by name or fatal under strict, patterns, URL lists and pipe: commands."""

from __future__ import annotations

import io
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo_core import create_dataset
from zoo_core.contracts import STREAMED, dataset_kind, is_sharded
from zoo_core.data.decode import decode_image
from zoo_core.data.loader import make_loader
from zoo_core.errors import BadInputError, DataNotFoundError, MissingExtraError, ZooError

pytest.importorskip("webdataset")
N, PER_SHARD = 24, 5  # shards of 5, 5, 5, 5, 4


def image_bytes(i: int, fmt: str) -> bytes:
    pixels = np.random.default_rng(i).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_shards(
    folder: Path, split: str = "train", n: int = N, damaged: int | None = None
) -> dict[int, bytes]:
    """Shards of samples whose label is their index; JPEG and PNG members, a JSON member zoo ignores."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for k, start in enumerate(range(0, n, PER_SHARD)):
        with tarfile.open(folder / f"{split}-{k:04d}.tar", "w") as tar:
            for i in range(start, min(n, start + PER_SHARD)):
                ext = "jpg" if i % 2 else "png"
                data = image_bytes(i, "JPEG" if ext == "jpg" else "PNG")
                if i == damaged:
                    data = data[: len(data) // 3]
                add(tar, f"s{i:05d}.{ext}", data)
                add(tar, f"s{i:05d}.cls", str(i).encode())
                add(tar, f"s{i:05d}.json", b"{}")
                written[i] = data
    (folder / "classes.txt").write_text("".join(f"c{i}\n" for i in range(n)))
    return written


@pytest.fixture
def shards(tmp_path) -> tuple[Path, dict[int, bytes]]:
    write_shards(tmp_path / "shards", "test", 7)
    written = write_shards(tmp_path / "shards")  # its classes.txt: 24 classes
    return tmp_path / "shards", written


def read(root: Path, split: str = "train", **kwargs):
    return create_dataset("wds", root=root, split=split, cache=False, **kwargs)


def test_shards_read_as_a_streamed_set_with_their_classes_and_counts(shards):
    root, written = shards
    data = read(root)
    assert dataset_kind(data) == STREAMED and is_sharded(data)
    assert data.shard_sizes == [5, 5, 5, 5, 4] and len(data) == N
    assert data.classes[:2] == ["c0", "c1"] and data.input_size == (3, 16, 16)
    image, label = data[7]
    assert label == 7
    assert torch.equal(
        image, torch.from_numpy(decode_image("x", (16, 16), 3, data=written[7])).permute(2, 0, 1)
    )


def epoch_labels(data, *, world=1, rank=0, workers=0, epoch=0, train=False, seed=0, start=0):
    loader = make_loader(
        data, batch_size=4, device="cpu", train=train, num_workers=workers, seed=seed, rank=rank,
        world_size=world, crop_padding=0, flip=False,
    )  # fmt: skip
    loader.set_epoch(epoch)
    return [y.tolist() for _, y in loader.iter_from(start)], len(loader)


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_ranks_and_workers_see_every_sample_once_per_epoch(shards, workers, world):
    data = read(shards[0])
    for train in (False, True):
        seen = []
        for rank in range(world):
            batches, length = epoch_labels(data, world=world, rank=rank, workers=workers, train=train)
            assert len(batches) == length
            seen += [y for batch in batches for y in batch]
        assert sorted(seen) == list(range(N))  # 24 divides among 1, 2 and 3 ranks: nothing dropped


def test_shuffling_is_a_function_of_seed_and_epoch(shards):
    data = read(shards[0])
    first, _ = epoch_labels(data, train=True, workers=2)
    assert first == epoch_labels(data, train=True, workers=2)[0]
    assert first != epoch_labels(data, train=True, workers=2, epoch=1)[0]
    assert first != epoch_labels(data, train=True, workers=2, seed=1)[0]
    assert first != sorted(first)


@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # 3 workers on 2 cores
@pytest.mark.parametrize("workers", [0, 2, 3])
def test_a_resumed_epoch_yields_exactly_the_batches_left(shards, workers):
    data = read(shards[0])
    full, length = epoch_labels(data, train=True, workers=workers, epoch=2)
    for start in (1, 2, length - 1):
        assert epoch_labels(data, train=True, workers=workers, epoch=2, start=start)[0] == full[start:]


def test_crops_cut_in_the_workers_keep_the_model_size(shards):
    data = read(shards[0], image_size=12)
    loader = make_loader(data, batch_size=4, device="cpu", train=True, num_workers=2, resized_crop=True)
    assert loader.augment_in_workers
    x, _ = next(iter(loader))
    assert x.shape == (4, 3, 12, 12) and x.dtype == torch.float32


def test_the_workers_normalize_the_batches_as_the_main_process_would(shards):
    from zoo_core.data.shard_feed import ShardLoader

    data = read(shards[0])
    options = dict(batch_size=4, device="cpu", train=False, channels_last=True, mean=data.mean, std=data.std)
    workers = ShardLoader(data, num_workers=2, **options)  # no size to cut to: nothing left but normalizing
    here = ShardLoader(data, num_workers=0, **options)
    assert not workers.transform.normalize and here.transform.normalize
    assert make_loader(data, batch_size=4, device="cpu", train=False, num_workers=2).transform.normalize
    (xa, ya), (xb, yb) = ([torch.cat(t) for t in zip(*loader, strict=True)] for loader in (workers, here))
    assert xa.dtype == torch.float32
    assert torch.equal(xa[ya.argsort()], xb[yb.argsort()])  # the workers deal the shards in their own order


def test_a_damaged_member_is_skipped_by_name_and_fatal_under_strict(tmp_path, capfd):
    write_shards(tmp_path, damaged=6)
    data = read(tmp_path)
    seen = [y for batch in epoch_labels(data)[0] for y in batch]
    assert 6 not in seen and len(seen) == N and seen.count(5) == 2  # the sample before stands in
    assert "train-0001.tar:s00006.png" in capfd.readouterr().err
    with pytest.raises(BadInputError, match=r"s00006\.png"):
        epoch_labels(read(tmp_path, strict=True))


def test_brace_patterns_url_lists_and_pipe_commands(shards):
    root, _ = shards
    pattern = str(root / "{split}-{0000..0004}.tar")
    assert len(read(Path("/nonexistent"), urls=pattern, classes=str(root / "classes.txt"))) == N
    listed = "::".join(str(root / f"train-{k:04d}.tar") for k in range(2))
    assert len(read(Path("/nonexistent"), urls=listed)) == 10
    piped = f"pipe:cat {root / 'train-0000.tar'}"
    data = read(Path("/nonexistent"), urls=piped, classes=str(root / "classes.txt"))
    assert data.shard_sizes == [5] and data[3][1] == 3


@pytest.mark.skipif(shutil.which("curl") is None, reason="webdataset reads http(s) shards through curl")
def test_shards_served_over_http_are_counted_read_and_named(shards):
    """Shards on a web server (here one on 127.0.0.1): counted by reading them through, classes.txt fetched
    beside them, every sample read once an epoch."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    root, _ = shards
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{{split}}-{{0000..0004}}.tar"
        data = read(Path("/nonexistent"), urls=url)
        assert data.shard_sizes == [5, 5, 5, 5, 4] and data.classes[:2] == ["c0", "c1"]
        batches, _ = epoch_labels(data, workers=2)
        assert sorted(y for batch in batches for y in batch) == list(range(N))
    finally:
        server.shutdown()
        server.server_close()


def test_without_classes_txt_the_indices_name_the_classes(tmp_path):
    write_shards(tmp_path, n=6)
    (tmp_path / "classes.txt").unlink()
    assert read(tmp_path).classes == ["0", "1", "2", "3", "4", "5"]


def test_no_shards_is_one_line_naming_the_expected_files(tmp_path, run_zoo):
    with pytest.raises(DataNotFoundError, match=r"train-\*\.tar"):
        read(tmp_path)
    out = run_zoo("train", "wds", "lenet", "--data-dir", str(tmp_path), "--epochs", "1")
    assert out.returncode == 2 and "train-*.tar" in out.stderr and "Traceback" not in out.stderr


def test_without_the_webdataset_package_the_message_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "webdataset", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'zoo-models\[wds\]'"):
        read(tmp_path)


@pytest.mark.slow
def test_trains_and_resumes_on_the_command_line(shards, run_zoo, tmp_path):
    root, _ = shards
    args = ["train", "wds", "lenet", "--data-dir", str(root), "--epochs", "2", "--batch-size", "4",
            "--out", str(tmp_path / "run"), "--no-tensorboard", "--device", "cpu", "--strict"]  # fmt: skip
    out = run_zoo(*args)
    assert out.returncode == 0, out.stderr
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_zoo_reads_the_samples_webdataset_reads_from_any_tar_format(tmp_path, fmt):
    import gzip

    from webdataset.tariterators import group_by_keys, tar_file_iterator

    from zoo_plugins.datasets.wds_shards import WANTED, shard_samples

    path = tmp_path / "train-0.tar"
    with tarfile.open(path, "w", format=fmt) as tar:
        folder = tarfile.TarInfo("a-folder")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        add(tar, "__meta__.json", b"{}")
        for i in range(5):
            stem = f"s{i}" if i % 2 == 0 else f"dir/s{i}"
            if i == 3 and fmt != tarfile.USTAR_FORMAT:
                stem = "x" * 70 + "/" + "y" * 70 + "/s3"  # a long name: GNU's L member or a pax path
            if i == 4 and fmt == tarfile.PAX_FORMAT:
                stem = "é-ü/s4"  # not ASCII: a pax path
            add(tar, f"{stem}.JPG", bytes([i]) * (700 + i))
            add(tar, f"{stem}.cls", str(i).encode())
            add(tar, f"{stem}.json", b"{}")
    compressed = tmp_path / "train-1.tar.gz"
    compressed.write_bytes(gzip.compress(path.read_bytes()))

    def wanted(name: str) -> bool:
        return name.rsplit(".", 1)[-1].lower() in WANTED

    for shard in (path, compressed):
        with open(shard, "rb") as stream:
            files = ({**f, "__url__": str(shard)} for f in tar_file_iterator(stream, select_files=wanted))
            expected = list(group_by_keys(files))
        assert len(expected) == 5 and list(shard_samples(str(shard))) == expected
    cut = tmp_path / "train-2.tar"
    cut.write_bytes(path.read_bytes()[:2600])
    with pytest.raises(ZooError, match=r"train-2\.tar is damaged"):
        list(shard_samples(str(cut)))
