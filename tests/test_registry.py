"""Data registry: cache resolution, checksums, offline errors, atomic downloads; MNIST loader."""

import gzip
import hashlib
import io
import pathlib
import zipfile

import numpy as np
import pytest

from embeddings_jax.data import images, registry


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(registry.ENV_VAR, str(tmp_path))
    monkeypatch.delenv(registry.OFFLINE_ENV_VAR, raising=False)
    return tmp_path


@pytest.fixture
def toy_dataset(monkeypatch):
    """Registers a dataset whose 'public source' is a local zip served by a fake urlopen."""
    content = b"hello world\n" * 100
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("toy/hello.txt", content)
    served = {"https://example.org/toy.zip": archive.getvalue(), "https://example.org/raw.txt": content}
    calls = []

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    def fake_urlopen(url, timeout):
        calls.append(url)
        if url not in served:
            raise OSError("network unreachable")
        return Response(served[url])

    sha = hashlib.sha256(content).hexdigest()
    ds = registry.Dataset(
        "toy", "a test dataset",
        {"hello.txt.gz": sha, "raw.txt": sha, "missing.txt": sha},
        {
            "hello.txt.gz": registry.Source("https://example.org/toy.zip", "toy/hello.txt"),
            "raw.txt": registry.Source("https://example.org/raw.txt"),
            "missing.txt": registry.Source("https://example.org/gone.txt"),
        },
    )
    monkeypatch.setitem(registry.DATASETS, "toy", ds)
    monkeypatch.setattr(registry.urllib.request, "urlopen", fake_urlopen)
    return content, calls


def test_data_dir_follows_env_var(cache):
    assert registry.data_dir() == cache
    assert registry.dataset_dir("mnist") == cache / "mnist"


def test_every_manifest_dataset_is_registered():
    assert {"eval", "ptb", "brown", "fra-eng", "mnist", "fashion_mnist", "ml-100k", "multi30k",
            "flickr8k_text", "scifact"} <= set(registry.DATASETS)


def test_unknown_dataset_and_file_are_clear_errors(cache):
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        registry.fetch("imagenet", "x")
    with pytest.raises(ValueError, match="has no file 'nope.gz'"):
        registry.fetch("mnist", "nope.gz")


def test_offline_missing_file_names_the_path(cache, monkeypatch):
    monkeypatch.setenv(registry.OFFLINE_ENV_VAR, "1")
    with pytest.raises(FileNotFoundError) as e:
        registry.fetch("mnist", "t10k-labels-idx1-ubyte.gz")
    msg = str(e.value)
    assert str(cache / "mnist" / "t10k-labels-idx1-ubyte.gz") in msg
    assert "EMBEDDINGS_JAX_DATA" in msg and "storage.googleapis.com" in msg


def test_download_extracts_compresses_and_verifies(cache, toy_dataset):
    content, calls = toy_dataset
    path = registry.fetch("toy", "hello.txt.gz")
    assert path == cache / "toy" / "hello.txt.gz"
    assert gzip.decompress(path.read_bytes()) == content  # stored gzipped, verified on content
    assert registry.fetch("toy", "raw.txt").read_bytes() == content
    registry.fetch("toy", "hello.txt.gz")
    assert calls == ["https://example.org/toy.zip", "https://example.org/raw.txt"]  # cached after


def test_failed_download_leaves_no_partial_file(cache, toy_dataset):
    with pytest.raises(FileNotFoundError, match="downloading it from https://example.org/gone.txt failed"):
        registry.fetch("toy", "missing.txt")
    assert not any((cache / "toy").glob("*")) if (cache / "toy").exists() else True


def test_corrupt_file_is_reported_not_used(cache, toy_dataset):
    path = registry.fetch("toy", "raw.txt")
    path.write_bytes(b"tampered")
    with pytest.raises(OSError, match="checksum mismatch .*raw.txt"):
        registry.fetch("toy", "raw.txt")
    assert path.read_bytes() == b"tampered"  # never deleted behind the user's back


def test_fra_eng_split_transform_is_the_documented_one():
    lines = [f"en {i}\tfr {i}".encode() for i in range(100)]
    kept = registry._fra_eng_train_split(b"\n".join(lines) + b"\n").splitlines()
    assert len(kept) == 95
    assert kept == sorted(kept, key=lambda l: int(l.split()[1]))  # original order preserved


def test_mnist_and_fashion_mnist_load(shared_data):
    shared_data("mnist")
    x, y = images.load_mnist("test", "mnist")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.int32 and set(np.unique(y)) == set(range(10))
    shared_data("fashion_mnist")
    x, y = images.load_mnist("train", "fashion_mnist")
    assert x.shape == (60000, 28, 28) and np.bincount(y).tolist() == [6000] * 10
    with pytest.raises(ValueError, match="unknown split 'val'"):
        images.load_mnist("val")


def test_read_idx_rejects_truncated_and_foreign_files(tmp_path):
    header = bytes([0, 0, 0x08, 3]) + np.array([2, 2, 2], ">u4").tobytes()
    good = tmp_path / "good.idx"
    good.write_bytes(header + bytes(range(8)))
    assert images.read_idx(good).shape == (2, 2, 2)
    bad = tmp_path / "short.idx.gz"
    bad.write_bytes(gzip.compress(header + bytes(5)))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        images.read_idx(bad)
    other = tmp_path / "other.idx"
    other.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="not an IDX file"):
        images.read_idx(other)
    assert isinstance(images.read_idx(pathlib.Path(good)), np.ndarray)


@pytest.fixture
def file_dataset(cache, tmp_path_factory, monkeypatch):
    """``make(payload, filename, member=None) -> path``: registers dataset 'local' whose one file comes
    from a ``file://`` URL (the real urllib, no network) and must hash to ``hello world``'s content."""
    content = b"hello world\n" * 50
    served = tmp_path_factory.mktemp("served")

    def make(payload: bytes, filename: str = "hello.txt", member: str | None = None):
        source = served / "payload.bin"
        source.write_bytes(payload)
        ds = registry.Dataset("local", "test", {filename: hashlib.sha256(content).hexdigest()},
                              {filename: registry.Source(source.as_uri(), member)})
        monkeypatch.setitem(registry.DATASETS, "local", ds)
        return cache / "local" / filename

    return content, make


def _leftovers(cache):
    folder = cache / "local"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_file_url_download_is_verified_then_written(file_dataset, cache):
    content, make = file_dataset
    path = make(gzip.compress(content), "hello.txt.gz")
    assert registry.fetch("local", "hello.txt.gz") == path
    assert gzip.decompress(path.read_bytes()) == content and _leftovers(cache) == ["hello.txt.gz"]


@pytest.mark.parametrize("payload, filename, member, error, match", [
    (b"tampered", "hello.txt", None, OSError, "does not match its checksum .* nothing was saved"),
    (b"\x1f\x8b broken gzip", "hello.txt.gz", None, OSError, "unreadable"),
    (b"not a zip", "hello.txt", "toy/hello.txt", FileNotFoundError, "did not give a zip archive holding toy/hello.txt"),
    (None, "hello.txt", "toy/other.txt", FileNotFoundError, "did not give a zip archive holding toy/other.txt"),
])
def test_bad_download_never_reaches_its_final_path(file_dataset, cache, payload, filename, member, error, match):
    content, make = file_dataset
    if payload is None:  # a zip without the expected member
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("toy/hello.txt", content)
        payload = archive.getvalue()
    path = make(payload, filename, member)
    with pytest.raises(error, match=match):
        registry.fetch("local", filename)
    assert not path.exists() and _leftovers(cache) == []


def test_failed_write_leaves_no_temporary_file(file_dataset, cache, monkeypatch):
    import os

    content, make = file_dataset
    path = make(content)

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space left"):
        registry.fetch("local", "hello.txt")
    monkeypatch.undo()
    assert not path.exists() and _leftovers(cache) == []


def test_sources_use_https_where_the_host_offers_it():
    # S3 *website* endpoints serve HTTP only; the content is still checked against its sha256
    http_only = {"fashion-mnist.s3-website.eu-central-1.amazonaws.com"}
    for d in registry.DATASETS.values():
        for f, src in d.sources.items():
            host = src.url.split("/")[2]
            assert src.url.startswith("https://") or host in http_only, (d.name, f, src.url)
