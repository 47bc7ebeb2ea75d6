import hashlib
import threading
from pathlib import Path

import pytest

from mlops_provider.core.storage import ArtifactStore
from tests.conftest import files_under


def test_write_is_atomic_and_hashed(store, tmp_path):
    sha = store.write_bytes("a/b/c.bin", b"hello")
    assert sha == hashlib.sha256(b"hello").hexdigest()
    assert store.read_bytes("a/b/c.bin") == b"hello"
    assert store.sha256("a/b/c.bin") == sha
    assert files_under(tmp_path / "artifacts") == ["a/b/c.bin"]  # no temporary file left


def test_failed_write_leaves_nothing_and_keeps_old_content(store, tmp_path):
    store.write_bytes("x.json", b"old")
    with pytest.raises(RuntimeError):
        with store.open_atomic("x.json") as f:
            f.write(b"half of the new")
            raise RuntimeError("crash mid-write")
    assert store.read_bytes("x.json") == b"old"
    assert files_under(tmp_path / "artifacts") == ["x.json"]


def test_create_exclusive_has_one_winner_under_concurrency(store):
    results = []
    barrier = threading.Barrier(8)

    def claim(i):
        barrier.wait()
        results.append(store.create_exclusive("claims/1.json", f"{i}".encode()))

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_uri_and_key_roundtrip_refuses_outside_root(store):
    uri = store.uri("datasets/x/manifest.json")
    assert uri.startswith("file:///")
    assert store.key_of(uri) == "datasets/x/manifest.json"
    with pytest.raises(ValueError, match="outside the artifact root"):
        store.key_of("file:///etc/passwd")
    with pytest.raises(ValueError, match="outside the artifact root"):
        store.key_of("s3://bucket/key")


def test_missing_artifact_names_uri(store):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        store.read_bytes("nothing-here.json")


def test_plain_path_root_is_local(tmp_path):
    s = ArtifactStore(str(tmp_path / "r"))
    s.write_json("k.json", {"a": 1})
    assert s.read_json("k.json") == {"a": 1}
    assert Path(tmp_path / "r" / "k.json").exists()
