"""Fetching a data set's official files: a progress bar, the published checksum verified, written atomically
(a temporary file beside the destination, then ``os.replace``), a truncated transfer detected and reported;
and extracting an archive without letting it write outside its folder."""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from zoo_core.errors import BadInputError, ZooError

CHUNK = 1 << 20


def download_file(
    url: str,
    dest: str | Path,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    desc: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``; on any failure ``dest`` is left as it was.

    Raises ZooError when the connection fails, the transfer ends before the announced Content-Length, or the
    file's checksum differs from ``md5``/``sha256``.
    """
    if (md5 is None) == (sha256 is None):
        raise ValueError("give exactly one of md5= or sha256=")
    algorithm, expected = ("md5", md5) if md5 is not None else ("sha256", sha256)
    digest = hashlib.new(algorithm)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    from zoo_core.progress import Phase

    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, _open(url, timeout) as response:
            length = response.headers.get("Content-Length")
            expected_size = int(length) if length is not None and length.isdigit() else None
            received = 0
            with Phase(f"downloading {desc or dest.name}", total=expected_size, unit="B") as bar:
                while True:
                    try:
                        chunk = response.read(CHUNK)
                    except http.client.IncompleteRead as exc:
                        received += len(exc.partial)
                        raise _truncated(url, received, expected_size) from None
                    except OSError as exc:
                        raise ZooError(f"Download of {url} failed after {received} bytes: {exc}") from None
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if expected_size is not None and received != expected_size:
                raise _truncated(url, received, expected_size)
        actual = digest.hexdigest()
        if actual != expected.lower():
            raise ZooError(
                f"Checksum mismatch for {url}: expected {algorithm} {expected}, got {actual}; "
                "the file was not kept (a broken mirror or a changed file: check the URL)"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _open(url: str, timeout: float) -> http.client.HTTPResponse:
    if not url.startswith(("http://", "https://", "file://")):
        raise BadInputError(f"Cannot download {url!r}: the URL must start with http://, https:// or file://")
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise ZooError(f"Download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ZooError(f"Cannot reach {url}: {reason} (check the connection or use a mirror URL)") from None


def _truncated(url: str, received: int, expected: int | None) -> ZooError:
    return ZooError(
        f"Download of {url} was truncated: got {received} of {expected} bytes; nothing was kept, try again"
    )


def extract_tar(archive: str | Path, dest: str | Path) -> None:
    """Extract a (compressed) tar archive into ``dest``: regular files and folders only, every path inside
    ``dest`` (no absolute paths, no ``..``, no links or devices), else ZooError naming the member."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for member in members:
                parts = PurePosixPath(member.name).parts
                if member.name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
                    raise ZooError(f"Refused to extract {archive}: unsafe member {member.name!r}")
            for member in members:
                target = dest.joinpath(*PurePosixPath(member.name).parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None  # a regular file always has contents
                with source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out, CHUNK)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ZooError(f"Cannot extract {archive}: {exc} (delete it and download again)") from None
