"""One DataLoader worker's cost per photo on one thread: decoding it to the stored size, and cutting a
training crop, for the checkout on ``PYTHONPATH``.

    PYTHONPATH=CHECKOUT python benchmarks/worker_image_cost.py after|before [TREE]

``after``: zoo's one decoder to the stored 256×256, then the crop cut from the stored image (what a worker
does since issue 29); ``before``: the code before it, whose workers cut the crop from the file's own pixels
(``decode_crop``). TREE (default: the tree ``benchmarks/imagefolder_stream.py --work /tmp/zoo29-stream
--images 3000`` writes): its first 150 photos, after 10 warm-up decodes; mean milliseconds a photo.
Run the two sides in turn, several times, on one machine.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

STORED, BOX, SIZE = (256, 256), (20, 30, 180, 200), (224, 224)


def per_image(items: list, fn: Callable) -> float:
    for item in items[:10]:
        fn(item)
    start = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - start) / len(items) * 1e3


def main() -> None:
    torch.set_num_threads(1)  # a DataLoader worker's
    side = sys.argv[1]
    tree = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/zoo29-stream/photos-3000/train")
    files = sorted(tree.rglob("*.jpg"))[:150]
    datas = [f.read_bytes() for f in files]
    if side == "after":
        from zoo_core.data.decode import decode_image
        from zoo_core.data.ops import resized_crop_one

        def crop(data: bytes) -> torch.Tensor:
            stored = torch.from_numpy(decode_image("photo", STORED, 3, True, data=data)).permute(2, 0, 1)
            return resized_crop_one(stored, BOX, SIZE)

        cut = per_image(datas, crop)
    else:
        from zoo_plugins.datasets.imagefolder import decode_crop, decode_image

        cut = per_image(files, lambda f: decode_crop(f, STORED, 3, True, BOX, SIZE))
    decoded = per_image(datas, lambda d: decode_image("photo", STORED, 3, True, data=d))
    print(f"decode to the stored size: {decoded:.3f} ms")
    print(f"a training crop ({'decode, then cut' if side == 'after' else 'cut from the file'}): {cut:.3f} ms")


if __name__ == "__main__":
    main()
