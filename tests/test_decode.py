"""The one decoder (zoo_core.data.decode): every kind of file as a viewer shows it, the fast JPEG path
within one level of Pillow's, and one line for a file that does not decode."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile import DAMAGED, LOSSY, exif_jpeg, kind, upright, write_hostile_set
from PIL import Image

from zoo_core.data.decode import decode_image, decode_reference, fast_jpeg_header, picture_size, unreadable
from zoo_core.data.ops import centre_box, resize_region


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    folder = tmp_path_factory.mktemp("hostile")
    return folder, write_hostile_set(folder)


def close(got: np.ndarray, seen: np.ndarray, name: str) -> bool:
    """Equal for lossless files; a JPEG's flat blocks within a few levels (its chroma halves at edges)."""
    if kind(name) not in LOSSY:
        return np.array_equal(got, seen)
    diff = np.abs(got.astype(int) - seen.astype(int))
    return got.shape == seen.shape and diff.mean() < 3 and np.median(diff) <= 2


def test_every_kind_of_file_decodes_to_what_a_viewer_shows(hostile) -> None:
    folder, seen = hostile
    for name, picture in seen.items():
        got = decode_image(folder / name, None, 3)
        assert close(got, picture, name), name


def test_grey_files_decode_to_one_channel_unless_colour_is_asked(hostile) -> None:
    folder, seen = hostile
    for name in ("grey.png", "deep16.png", "float.tif", "onebit.png", "la.png"):
        got = decode_image(folder / name)
        assert got.shape == (48, 64) and np.array_equal(got, seen[name][..., 0]), name
    assert decode_image(folder / "rgba.png", None, 1).shape == (48, 64)  # colour to grey when asked


def test_a_resized_file_is_the_viewers_picture_resized_by_the_one_rule(hostile) -> None:
    folder, seen = hostile
    for name, picture in seen.items():
        for size, keep_aspect in (((30, 30), False), ((20, 40), True), ((96, 128), False)):
            got = decode_image(folder / name, size, 3, keep_aspect)
            h, w = picture.shape[:2]
            region = centre_box((w, h), size) if keep_aspect else (0, 0, w, h)
            expected = resize_region(torch.from_numpy(picture).permute(2, 0, 1), region, size)
            assert close(got, expected.permute(1, 2, 0).numpy(), name), (name, size)


def test_the_upright_size_is_read_from_the_header(hostile) -> None:
    folder, _ = hostile
    assert picture_size(folder / "exif1.jpg") == (64, 48)
    for k in (5, 6, 7, 8):  # stored 48 wide and 64 high, shown 64 wide
        assert picture_size(folder / f"exif{k}.jpg") == (64, 48)


def jpeg(picture: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "JPEG", **options)
    return buffer.getvalue()


def photo(seed: int, size: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size[0] // 6, size[1] // 6, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((size[1], size[0]), Image.Resampling.BILINEAR))


FAST_KINDS = {
    "baseline 4:2:0": dict(quality=90),
    "baseline 4:4:4": dict(quality=90, subsampling=0),
    "progressive": dict(quality=90, progressive=True),
    "grey": dict(quality=90, grey=True),
    "exif 6": dict(quality=90, orientation=6),
    "exif 3": dict(quality=90, orientation=3),
}


@pytest.mark.parametrize("name", list(FAST_KINDS))
def test_the_fast_jpeg_path_is_within_one_level_of_pillows(name: str) -> None:
    options = dict(FAST_KINDS[name])
    picture = photo(1, (150, 210))
    if options.pop("grey", False):
        data = jpeg(np.asarray(Image.fromarray(picture).convert("L")), **options)
    elif "orientation" in options:
        data = exif_jpeg(picture, options.pop("orientation"))
    else:
        data = jpeg(picture, **options)
    assert fast_jpeg_header(data) is not None  # this file takes the fast path
    for size, keep_aspect, channels in (((128, 128), True, 3), ((96, 160), False, None), (None, False, 1)):
        fast = decode_image("p.jpg", size, channels, keep_aspect, data=data).astype(int)
        reference = decode_reference(data, size, channels, keep_aspect).astype(int)
        assert fast.shape == reference.shape and np.abs(fast - reference).max() <= 1, (size, channels)


def test_cmyk_and_cut_short_jpegs_go_to_pillow(hostile) -> None:
    folder, _ = hostile
    assert fast_jpeg_header((folder / "cmyk.jpg").read_bytes()) is None
    assert fast_jpeg_header((folder / "truncated.jpg").read_bytes()) is None
    assert fast_jpeg_header((folder / "exif6.jpg").read_bytes()) == (48, 64, 3)  # stored 48×64


@pytest.mark.parametrize("name", DAMAGED)
def test_a_damaged_file_raises_and_is_reported_in_one_line_naming_it(hostile, name: str) -> None:
    folder, _ = hostile
    for size in (None, (32, 32)):
        with pytest.raises(Exception) as caught:
            decode_image(folder / name, size, 3)
        line = unreadable(folder / name, caught.value)
        assert line.startswith(f"{folder / name} (") and "\n" not in line


def test_the_first_frame_of_an_animation_is_the_picture(hostile) -> None:
    folder, _ = hostile
    assert np.array_equal(decode_image(folder / "animated.gif", None, 3), upright())
