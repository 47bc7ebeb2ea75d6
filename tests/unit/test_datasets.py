import sqlite3

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlops_provider.core import datasets, sources
from mlops_provider.core.errors import CorruptArtifactError, EmptyDatasetError, InvalidInputError
from tests.conftest import files_under


def table(n=1000, offset=0):
    return pa.table(
        {
            "id": list(range(offset, offset + n)),
            "x": [float(i) / 3 for i in range(n)],
            "c": ["a", "b"] * (n // 2),
        }
    )


def test_snapshot_is_content_addressed_and_reused(store, tmp_path):
    s1 = datasets.write_snapshot(store, "d", [table()], source="test", query="q1")
    s2 = datasets.write_snapshot(store, "d", [table()], source="test", query="q1")
    s3 = datasets.write_snapshot(store, "d", [table(offset=1)], source="test")
    assert s1.sha256 == s2.sha256 and s2.reused and not s1.reused
    assert s3.sha256 != s1.sha256
    assert s1.rows == 1000 and s1.column_names == ["id", "x", "c"]
    m = store.read_json(store.key_of(s1.uri) + "/manifest.json")
    assert m["sha256"] == store.sha256(store.key_of(s1.data_uri)) == s1.sha256
    assert m["query"] == "q1" and m["source"] == "test" and m["rows"] == 1000
    assert {c["name"]: c["type"] for c in m["columns"]}["x"] == "double"
    snaps = [p for p in files_under(tmp_path / "artifacts") if p.endswith("manifest.json")]
    assert len(snaps) == 2
    assert not [p for p in files_under(tmp_path / "artifacts") if "_staging" in p]
    assert datasets.read_dataframe(store, s1.uri)["id"].tolist() == list(range(1000))


def test_empty_extract_fails_and_leaves_nothing(store, tmp_path):
    with pytest.raises(EmptyDatasetError, match=r"'d'.*0 row|'d'.*no data"):
        datasets.write_snapshot(store, "d", [], source="sql:warehouse", query="SELECT 1 WHERE 0")
    with pytest.raises(EmptyDatasetError, match="expected at least 5"):
        datasets.write_snapshot(store, "d", [table(2)], source="src", min_rows=5)
    assert files_under(tmp_path / "artifacts") == []


def test_bad_dataset_name(store):
    with pytest.raises(InvalidInputError, match="dataset_name"):
        datasets.write_snapshot(store, "../escape", [table()], source="x")


def test_corrupt_parquet_is_named(store):
    snap = datasets.write_snapshot(store, "d", [table()], source="t")
    key = store.key_of(snap.data_uri)
    store.write_bytes(key, b"PAR1 this is not parquet PAR1")
    with pytest.raises(CorruptArtifactError, match="data.parquet"):
        datasets.read_dataframe(store, snap.uri)


def test_sql_batches_from_real_sqlite_widen_null_columns(tmp_path):
    db = tmp_path / "w.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (id INTEGER, v REAL, s TEXT)")
        con.executemany(
            "INSERT INTO t VALUES (?, ?, ?)",
            [(i, None if i < 5 else i * 1.5, None if i < 7 else "x") for i in range(20)],
        )
    batches = list(
        sources.iter_sql_batches(lambda: sqlite3.connect(db), "SELECT * FROM t ORDER BY id", batch_size=5)
    )
    assert len(batches) == 4
    assert batches[-1].schema.field("v").type == pa.float64()
    assert batches[-1].schema.field("s").type in (pa.string(), pa.large_string())


def test_sql_errors_are_clear(tmp_path):
    db = tmp_path / "w.db"
    sqlite3.connect(db).close()
    with pytest.raises(InvalidInputError, match="non-empty SQL"):
        list(sources.iter_sql_batches(lambda: sqlite3.connect(db), "  "))
    with pytest.raises(InvalidInputError, match="duplicate column names"):
        list(sources.iter_sql_batches(lambda: sqlite3.connect(db), "SELECT 1 AS a, 2 AS a"))


def test_file_sources_csv_parquet_and_glob(tmp_path, store):
    pq.write_table(table(10), tmp_path / "p1.parquet")
    pq.write_table(table(10, 10), tmp_path / "p2.parquet")
    (tmp_path / "c.csv").write_text("id,x\n1,0.5\n2,1.5\n")
    snap = datasets.write_snapshot(
        store, "files", sources.iter_file_batches(f"file://{tmp_path}/p*.parquet"), source="glob"
    )
    assert snap.rows == 20
    csv = list(sources.iter_file_batches(str(tmp_path / "c.csv")))
    assert sum(b.num_rows for b in csv) == 2
    with pytest.raises(LookupError, match="nothing"):
        list(sources.iter_file_batches(str(tmp_path / "nothing.csv")))
    (tmp_path / "bad.parquet").write_bytes(b"garbage")
    with pytest.raises(CorruptArtifactError, match="bad.parquet"):
        list(sources.iter_file_batches(str(tmp_path / "bad.parquet")))
