"""Where a split's WebDataset shards are and how many samples each holds: ``{split}-*.tar`` in a folder, or
a brace pattern / ``::``-separated list of local paths, http(s) URLs and ``pipe:`` commands (expanded and
opened by the ``webdataset`` package); the sample counts from a shard index ``{split}-shards.json`` (wids'
format, written by ``zoo export --format wds``), else counted once from the tar headers (cached), else, for
remote shards, by reading them through once. Class names come from ``classes.txt`` beside the shards."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zoo_core.data.root import read_cache, write_cache
from zoo_core.errors import BadInputError, DataNotFoundError, ZooError
from zoo_core.progress import track

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
WANTED = (*IMAGE_EXTS, "cls")
_META = re.compile(r"__[^/]*__($|/)")  # members webdataset skips as metadata
BLOCK = 512  # a tar header, and the unit its members are padded to


def shard_urls(root: Path, split: str, urls: str | None) -> tuple[list[str], Path | None]:
    """(the shards of ``split`` in order, the local folder they are in or None for remote ones)."""
    if urls is None:
        found = sorted(str(p) for p in root.glob(f"{split}-*.tar"))
        if not found:
            raise DataNotFoundError(
                f"No WebDataset shards {root}/{split}-*.tar (expected tar files of KEY.jpg|jpeg|png|webp and "
                "KEY.cls members, classes.txt beside them; or --dataset-arg urls=PATTERN)"
            )
        return found, root
    from webdataset.shardlists import expand_urls

    expanded = expand_urls(urls.replace("{split}", split))
    local = [u for u in expanded if "://" not in u and not u.startswith("pipe:")]
    missing = [u for u in local if not Path(u).is_file()]
    if missing:
        raise DataNotFoundError(f"WebDataset shard(s) not found: {', '.join(missing[:3])}")
    folders = {str(Path(u).resolve().parent) for u in local}
    return expanded, (Path(folders.pop()) if len(local) == len(expanded) and len(folders) == 1 else None)


def open_shard(url: str) -> Any:
    """A readable stream of one shard: a local file, an http(s) URL or a ``pipe:`` command's output."""
    from webdataset.gopen import gopen

    try:
        return gopen(url, "rb")
    except Exception as exc:
        raise ZooError(f"Cannot open WebDataset shard {url}: {exc}") from None


def shard_samples(url: str) -> Iterator[dict[str, Any]]:
    """One shard's samples as webdataset groups them (``__key__``, ``__url__`` and one entry per member
    extension, lowercased; runs of members with one key make a sample), reading only image and ``.cls``
    members. A plain tar is walked by ``tar_members``; a compressed one by webdataset's reader."""
    from webdataset.tariterators import base_plus_ext

    stream = open_shard(url)
    try:
        head = stream.read(BLOCK)
        sample: dict[str, Any] | None = None
        for name, data in _members(head, stream, url):
            key, ext = base_plus_ext(name)
            if key is None:
                continue
            if sample is None or key != sample["__key__"]:
                if sample is not None:
                    yield sample
                sample = {"__key__": key, "__url__": url}
            if ext.lower() in sample:
                raise ValueError(f"{name}: a second member with one key and extension")
            sample[ext.lower()] = data
        if sample is not None:
            yield sample
    except GeneratorExit:  # closed early (before this module's names, tarfile's too, are torn down)
        raise
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise ZooError(f"WebDataset shard {url} is damaged: {' '.join(str(exc).split())[:160]}") from None
    finally:
        stream.close()


def _wanted(name: str) -> bool:
    return name.rsplit(".", 1)[-1].lower() in WANTED and not _META.match(name)


def _members(head: bytes, stream: Any, url: str) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of a shard's wanted regular members, in order; ``head``: its first block, read."""
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":  # compressed
        from webdataset.tariterators import tar_file_iterator

        joined = io.BufferedReader(_Prepended(head, stream))  # type: ignore[arg-type]
        for member in tar_file_iterator(joined, select_files=_wanted):
            yield member["fname"], member["data"]
        return
    yield from tar_members(head, stream)


def tar_members(head: bytes, stream: Any) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of the wanted regular members of an uncompressed tar stream whose first 512-byte
    block ``head`` is read: ustar, GNU long names and pax paths and sizes. Written here rather than
    taken from tarfile (which webdataset reads through): building its member objects made reading a
    shard several times slower than this walk (measured in benchmarks/results/data-sources-cpu.md)."""
    block, long_name, pax = head, None, {}
    while len(block) == BLOCK and block.strip(b"\0"):
        size = _octal(block[124:136])
        kind = block[156:157]
        name = long_name or pax.get("path") or _name(block)
        size = int(pax.get("size", size))
        padded = -(-size // BLOCK) * BLOCK
        if kind in (b"L", b"x") or (kind in (b"0", b"\0", b"7") and _wanted(name)):
            data = _read(stream, padded)[:size]
            if kind == b"L":
                long_name = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            elif kind == b"x":
                pax = _pax(data)
            else:
                yield name, data
                long_name, pax = None, {}
        else:
            _skip(stream, padded)
            if kind not in (b"g",):
                long_name, pax = None, {}
        block = stream.read(BLOCK)
    if block and len(block) < BLOCK:
        raise ValueError("the tar file ends inside a header")


def _octal(field: bytes) -> int:
    if field[:1] == b"\x80":  # GNU base-256, for members of 8 GiB or more
        return int.from_bytes(field[1:], "big")
    digits = field.strip(b"\0 ")
    if digits and not digits.isdigit():
        raise ValueError(f"a tar header's size is not a number: {digits[:12]!r}")
    return int(digits or b"0", 8)


def _name(block: bytes) -> str:
    name = block[:100].split(b"\0", 1)[0]
    if block[257:262] == b"ustar":
        prefix = block[345:500].split(b"\0", 1)[0]
        name = prefix + b"/" + name if prefix else name
    return name.decode("utf-8", "surrogateescape")


def _pax(data: bytes) -> dict[str, str]:
    """A pax extended header's records ("LENGTH key=value\n")."""
    records, at = {}, 0
    while at < len(data) and data[at : at + 1].isdigit():
        space = data.index(b" ", at)
        length = int(data[at:space])
        key, _, value = data[space + 1 : at + length - 1].partition(b"=")
        records[key.decode()] = value.decode("utf-8", "surrogateescape")
        at += length
    return records


def _read(stream: Any, n: int) -> bytes:
    data = stream.read(n)
    if len(data) < n:
        raise ValueError("the tar file ends inside a member")
    return data


def _skip(stream: Any, n: int) -> None:
    if n and getattr(stream, "seekable", lambda: False)():
        stream.seek(n, io.SEEK_CUR)
    else:
        _read(stream, n)


class _Prepended(io.RawIOBase):
    """A stream with its first bytes, already read, put back in front."""

    def __init__(self, head: bytes, stream: Any) -> None:
        self.head, self.stream = head, stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n], self.head = self.head[:n], self.head[n:]
            return n
        data = self.stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def read_index(folder: Path | None, split: str, index: str | None, urls: list[str]) -> list[int] | None:
    """The sample counts of ``urls`` from a shard index (``index``, else ``{split}-shards.json`` in the
    shards' folder), or None without one. An index that does not list every shard is refused."""
    path = Path(index) if index else (folder / f"{split}-shards.json" if folder else None)
    if path is None or not path.is_file():
        if index:
            raise DataNotFoundError(f"No shard index {index}")
        return None
    try:
        listed = json.loads(path.read_text())["shardlist"]
        counts = {Path(s["url"]).name: int(s["nsamples"]) for s in listed}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInputError(f"Shard index {path} does not read ({type(exc).__name__}: {exc})") from None
    missing = [u for u in urls if Path(u).name not in counts]
    if missing:
        raise BadInputError(f"Shard index {path} does not list {Path(missing[0]).name}")
    return [counts[Path(u).name] for u in urls]


def count_samples(urls: list[str], cache_dir: Path | None) -> tuple[list[int], int]:
    """(samples per shard, the largest class index seen): local shards from their tar headers (only the
    ``.cls`` members are read), cached by path, size and modification time; remote ones read through."""
    key = hashlib.sha256(json.dumps([_stamp(u) for u in urls]).encode()).hexdigest()[:32]
    cache_file = cache_dir / f"wds-counts-{key}.json" if cache_dir else None
    saved = read_cache(cache_file, "counts", "top")
    if saved is not None:
        return [int(c) for c in saved[0]], int(saved[1])
    counts, top = [], -1
    for url in track(urls, "counting the samples of the shards", unit="shards"):
        count, label = _count_local(url) if Path(url).is_file() else _count_stream(url)
        counts.append(count)
        top = max(top, label)
    write_cache(cache_file, {"counts": counts, "top": top})
    return counts, top


def _stamp(url: str) -> list[Any]:
    path = Path(url)
    if path.is_file():
        st = path.stat()
        return [str(path.resolve()), st.st_size, st.st_mtime_ns]
    return [url]


def _count_local(url: str) -> tuple[int, int]:
    """Samples (runs of one key, as webdataset groups them) and the largest class of a local tar file."""
    from webdataset.tariterators import base_plus_ext

    count, top, current = 0, -1, None
    try:
        with tarfile.open(url) as tar:
            for member in tar:
                if not member.isreg() or _META.match(member.name):
                    continue
                key, ext = base_plus_ext(member.name)
                if key is None or ext.lower() not in WANTED:
                    continue
                if key != current:
                    count, current = count + 1, key
                if ext.lower() == "cls":
                    top = max(top, _label(tar.extractfile(member).read()))  # type: ignore[union-attr]
    except (tarfile.TarError, OSError) as exc:
        raise BadInputError(f"WebDataset shard {url} is not a readable tar file: {exc}") from None
    return count, top


def _count_stream(url: str) -> tuple[int, int]:
    count, top = 0, -1
    for sample in shard_samples(url):
        count += 1
        top = max(top, _label(sample.get("cls", b"")))
    return count, top


def _label(data: bytes) -> int:
    try:
        return int(data.decode().strip())
    except (UnicodeDecodeError, ValueError):
        return -1


def read_classes(folder: Path | None, urls: list[str], classes: str | None, top: int | None) -> list[str]:
    """The class names: the ``classes`` file given, else ``classes.txt`` beside the shards (one name a
    line), else the class indices seen as names ("0", "1"…)."""
    candidates = [classes] if classes else []
    if folder is not None:
        candidates.append(str(folder / "classes.txt"))
    elif "://" in urls[0]:
        candidates.append(urls[0].rsplit("/", 1)[0] + "/classes.txt")
    for candidate in candidates:
        text = _read_text(candidate)
        if text is not None:
            names = [line.strip() for line in text.splitlines() if line.strip()]
            if names:
                return names
    if classes:
        raise DataNotFoundError(f"No class list at {classes}")
    if top is None or top < 0:
        raise DataNotFoundError(
            "No classes.txt beside the shards and no class indices counted: write one class name a line"
        )
    return [str(i) for i in range(top + 1)]


def _read_text(where: str) -> str | None:
    if "://" not in where and not where.startswith("pipe:"):
        path = Path(where)
        return path.read_text() if path.is_file() else None
    try:
        stream = open_shard(where)
        try:
            return stream.read().decode()
        finally:
            stream.close()
    except Exception:  # not there: the indices name the classes
        return None
