"""Downloads against a local HTTP server: checksums, atomic writes, truncated transfers, the data sets'
``download=True`` paths and safe archive extraction."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from test_datasets_cifar10 import write_cifar
from test_datasets_mnist import write_mnist

from zoo_core.data.download import download_file, extract_tar
from zoo_core.errors import ZooError
from zoo_plugins.datasets import cifar10 as cifar_module
from zoo_plugins.datasets import mnist as mnist_module
from zoo_plugins.datasets.cifar10 import cifar10
from zoo_plugins.datasets.mnist import mnist

PAYLOAD = bytes(range(256)) * 40


class Server:
    """Files served at http://127.0.0.1:PORT/<name>; names under truncated/ announce more bytes than sent."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.lstrip("/")
                body = server.files.get(name.removeprefix("truncated/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                extra = 1000 if name.startswith("truncated/") else 0
                self.send_header("Content-Length", str(len(body) + extra))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    s.files["blob.bin"] = PAYLOAD
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def test_download_verifies_md5_and_sha256(server: Server, tmp_path: Path) -> None:
    dest = download_file(
        server.url + "blob.bin", tmp_path / "a" / "blob.bin", md5=hashlib.md5(PAYLOAD).hexdigest()
    )
    assert dest.read_bytes() == PAYLOAD
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    assert (
        download_file(server.url + "blob.bin", tmp_path / "b.bin", sha256=sha.upper()).read_bytes() == PAYLOAD
    )


def test_a_wrong_checksum_keeps_nothing(server: Server, tmp_path: Path) -> None:
    with pytest.raises(ZooError, match=r"Checksum mismatch .*blob\.bin.*expected md5 0+, got"):
        download_file(server.url + "blob.bin", tmp_path / "blob.bin", md5="0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_download_leaves_the_previous_file_whole(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "blob.bin"
    dest.write_bytes(b"previous")
    with pytest.raises(ZooError, match="Checksum"):
        download_file(server.url + "blob.bin", dest, md5="0" * 32)
    assert dest.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["blob.bin"]


def test_a_truncated_transfer_is_detected(server: Server, tmp_path: Path) -> None:
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    with pytest.raises(ZooError, match=rf"truncated: got {len(PAYLOAD)} of {len(PAYLOAD) + 1000} bytes"):
        download_file(server.url + "truncated/blob.bin", tmp_path / "blob.bin", md5=md5)
    assert list(tmp_path.iterdir()) == []


def test_http_and_connection_errors_are_one_line(server: Server, tmp_path: Path) -> None:
    with pytest.raises(ZooError, match="HTTP 404"):
        download_file(server.url + "missing", tmp_path / "x", md5="0" * 32)
    with pytest.raises(ZooError, match="Cannot reach"):
        download_file("http://127.0.0.1:9/x", tmp_path / "x", md5="0" * 32, timeout=5)
    with pytest.raises(ZooError, match="must start with"):
        download_file("ftp://example.org/x", tmp_path / "x", md5="0" * 32)


def cifar_archive(tmp_path: Path) -> tuple[bytes, dict]:
    source = tmp_path / "source"
    written = write_cifar(source / "cifar-10-batches-py")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return buffer.getvalue(), written


def test_cifar10_download_fetches_checks_and_unpacks(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, written = cifar_archive(tmp_path)
    server.files["cifar-10-python.tar.gz"] = archive
    monkeypatch.setattr(cifar_module, "MD5", hashlib.md5(archive).hexdigest())
    root = tmp_path / "data"
    data = cifar10(root=root, split="test", download=True, url=server.url + "cifar-10-python.tar.gz")
    assert torch.equal(data.images, written["test"][0])
    assert not (root / "cifar-10-python.tar.gz").exists()  # the archive is removed once unpacked
    assert len(cifar10(root=root, split="train")) == 20  # and the data set is found from then on


def test_cifar10_download_url_from_the_environment(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive, _ = cifar_archive(tmp_path)
    server.files["mirror.tgz"] = archive
    monkeypatch.setattr(cifar_module, "MD5", hashlib.md5(archive).hexdigest())
    monkeypatch.setenv("ZOO_CIFAR10_URL", server.url + "mirror.tgz")
    assert len(cifar10(root=tmp_path / "data", split="test", download=True)) == 6


def test_cifar10_download_with_a_wrong_checksum_fails_cleanly(server: Server, tmp_path: Path) -> None:
    archive, _ = cifar_archive(tmp_path)  # not the official archive, so the published MD5 differs
    server.files["cifar-10-python.tar.gz"] = archive
    root = tmp_path / "data"
    with pytest.raises(ZooError, match="Checksum mismatch"):
        cifar10(root=root, download=True, url=server.url + "cifar-10-python.tar.gz")
    assert not root.exists() or list(root.iterdir()) == []


def test_mnist_download_fetches_the_four_files(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = write_mnist(tmp_path / "source")
    md5 = {}
    for path in (tmp_path / "source").iterdir():
        server.files[f"mnist/{path.name}"] = path.read_bytes()
        md5[path.name] = hashlib.md5(path.read_bytes()).hexdigest()
    monkeypatch.setattr(mnist_module, "MD5", md5)
    monkeypatch.setenv("ZOO_MNIST_URL", server.url + "mnist")  # no trailing slash needed
    root = tmp_path / "data"
    data = mnist(root=root, split="test", download=True)
    assert torch.equal(data.images[:, 0], torch.from_numpy(written["test"][0]))
    assert sorted(p.name for p in (root / "mnist").iterdir()) == sorted(md5)


def test_mnist_download_stops_at_a_truncated_file(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_mnist(tmp_path / "source")
    for path in (tmp_path / "source").iterdir():
        server.files[f"m/{path.name}"] = path.read_bytes()
    with pytest.raises(ZooError, match="truncated"):
        mnist(root=tmp_path / "data", download=True, url=server.url + "truncated/m/")


def test_extraction_refuses_paths_outside_the_folder(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(ZooError, match=r"unsafe member '\.\./escaped\.txt'"):
        extract_tar(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()
    link = tmp_path / "link.tar"
    with tarfile.open(link, "w") as tar:
        info = tarfile.TarInfo("innocent")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(ZooError, match="unsafe member"):
        extract_tar(link, tmp_path / "out")


def test_extraction_of_a_damaged_archive_is_reported(tmp_path: Path) -> None:
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(gzip.compress(b"not a tar")[:20])
    with pytest.raises(ZooError, match="Cannot extract"):
        extract_tar(archive, tmp_path / "out")
