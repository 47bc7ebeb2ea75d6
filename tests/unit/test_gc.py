"""``mlops gc`` on a registry with history, built by the real core steps (train, evaluate, register,
promote, roll back, detect drift, score) on scikit-learn's breast cancer (binary) and wine
(multiclass, string labels) data, plus orphans written with the store's own writers.

The expected orphan set is the test's own bookkeeping of what it created (not gc's code): dry-run
must report exactly it and delete nothing; --apply must delete exactly it, and afterwards every
registered version still loads (sha256 pinned) and every snapshot a version references still has
the sha256 its manifest records."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer, load_wine

from mlops_provider.cli import main
from mlops_provider.core import gc
from mlops_provider.core.datasets import read_manifest, read_table, write_snapshot
from mlops_provider.core.registry import ModelRegistry
from mlops_provider.core.steps.drift import DriftParams, detect_drift
from mlops_provider.core.steps.evaluate import EvaluateParams, evaluate_challenger
from mlops_provider.core.steps.register import RegisterParams, register_and_promote
from mlops_provider.core.steps.run import RunInfo
from mlops_provider.core.steps.score import ScoreParams, score_batch
from mlops_provider.core.storage import ArtifactStore
from tests.unit.steps.test_evaluate import frames, snapshot, train

LOGREG = "sklearn.linear_model.LogisticRegression"
DAY = 86400.0
KEEP = 2  # --keep-runs in these tests
WATCHED = ["mean radius", "mean texture"]


def _retrain(store, registry, model, dag, run_id, train_df, eval_snap, **params):
    snap = snapshot(store, f"{model}_train", train_df)
    run = RunInfo(dag, run_id, "train")
    _, trained = train(store, snap, train_df, LOGREG, run, **params)
    verdict = evaluate_challenger(
        EvaluateParams(model),
        challenger=trained,
        dataset=eval_snap,
        store=store,
        registry=registry,
        run=run.for_task("evaluate"),
    ).to_dict()
    register_and_promote(
        RegisterParams(model),
        trained=trained,
        verdict=verdict,
        store=store,
        registry=registry,
        run=run.for_task("register"),
    )
    return snap


def _age(root: Path, seconds: float) -> None:
    """Move every file (and link) back in time by ``seconds``, keeping their order."""
    for folder, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            p = os.path.join(folder, name)
            st = os.lstat(p)
            os.utime(p, (st.st_atime - seconds, st.st_mtime - seconds), follow_symlinks=False)


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A store with history (aged 60 days, order kept) and the keys the test expects gc to remove."""
    base = tmp_path_factory.mktemp("gc") / "template"
    store = ArtifactStore(f"file://{base}")
    registry = ModelRegistry(store)
    orphans: set[str] = set()
    temporaries: set[str] = set()
    train_df, eval_df = frames(load_breast_cancer)
    eval_snap = snapshot(store, "cancer_eval", eval_df)

    # retrain_cancer: r1, a run that crashed after training (never registered), r2, r3, r4
    _retrain(
        store,
        registry,
        "cancer",
        "retrain_cancer",
        "r1",
        train_df.sample(frac=0.9, random_state=1),
        eval_snap,
        C=0.05,
    )
    crashed = train_df.sample(frac=0.9, random_state=99)
    snap = snapshot(store, "cancer_train", crashed)
    train(store, snap, crashed, LOGREG, RunInfo("retrain_cancer", "crashed", "train"), C=0.05)
    orphans |= {"runs/retrain_cancer/crashed", store.key_of(snap["uri"])}
    for i in (2, 3, 4):
        _retrain(
            store,
            registry,
            "cancer",
            "retrain_cancer",
            f"r{i}",
            train_df.sample(frac=0.9, random_state=i),
            eval_snap,
            C=0.05 * i,
        )
    registry.promote("cancer", 1, actor="test", reason="manual pin")
    registry.rollback("cancer", actor="test", reason="undo the pin")

    # wine, multiclass with string labels: one run of its own DAG
    wine_train, wine_eval = frames(load_wine)
    names = {0: "barolo", 1: "grignolino", 2: "barbera"}
    wine_train, wine_eval = (d.assign(target=d["target"].map(names)) for d in (wine_train, wine_eval))
    _retrain(
        store,
        registry,
        "wine",
        "retrain_wine",
        "w1",
        wine_train,
        snapshot(store, "wine_eval", wine_eval),
        C=1.0,
    )

    # drift: four windows compared with the current champion; the two oldest entries go, with their
    # reports and window snapshots
    for i in range(4):
        window = eval_df.copy()
        window["mean radius"] += 0.3 * i * train_df["mean radius"].std()
        wsnap = snapshot(store, "cancer_window", window)
        res = detect_drift(
            DriftParams("cancer", features=WATCHED), dataset=wsnap, store=store, registry=registry
        )
        if i < 2:
            entry = next(n for n in store.list_dir("drift/cancer/history") if wsnap["sha256"][:12] in n)
            orphans |= {
                f"drift/cancer/history/{entry}",
                store.key_of(res.report_uri),
                store.key_of(wsnap["uri"]),
            }
        time.sleep(0.01)

    # predictions: four scoring runs on different inputs; the two oldest go, with their inputs
    for i in range(4):
        inp = snapshot(store, "cancer_to_score", eval_df.drop(columns="target").iloc[i * 10 :])
        out = score_batch(
            ScoreParams("cancer"),
            dataset=inp,
            store=store,
            registry=registry,
            run=RunInfo("score_cancer", f"s{i}", "score"),
        )
        if i < 2:
            orphans |= {f"predictions/cancer/score_cancer/s{i}", store.key_of(inp["uri"])}
        assert out.scoring.rows == len(eval_df) - i * 10

    # a model that is no longer in the registry: its predictions and drift history go
    store.write_bytes("predictions/ghost/score_ghost/g1/predictions.parquet", b"PAR1 not really")
    store.write_json("predictions/ghost/score_ghost/g1/manifest.json", {"model": "ghost"})
    store.write_json(
        "drift/ghost/history/20240101T000000000000Z-abcdefabcdef.json",
        {"model": "ghost", "champion_version": 1},
    )
    orphans |= {
        "predictions/ghost/score_ghost/g1",
        "drift/ghost/history/20240101T000000000000Z-abcdefabcdef.json",
    }
    # an ad-hoc snapshot nobody references
    adhoc = write_snapshot(store, "adhoc", [eval_snap_table(eval_df, 5)], source="test")
    orphans.add(store.key_of(adhoc.uri))
    # temporaries of killed writers: one in a kept run folder, one in a dataset's staging folder
    for key in (
        "runs/retrain_cancer/r4/train/.tmp-0123456789ab-model.skops",
        "datasets/cancer_train/_staging/deadbeef.parquet",
    ):
        store.write_bytes(key, b"x" * 1000)
        temporaries.add(key)
    # things gc must not touch: other top-level folders, unclassified files
    store.write_bytes("landing/cancer/2024-01/part-00000.parquet", b"landed")
    store.write_bytes("runs/stray.txt", b"stray")

    _age(base, 60 * DAY)
    # recent orphans, kept by time: 10 days old (--older-than 30), and one just written (grace period)
    ten = write_snapshot(store, "adhoc", [eval_snap_table(eval_df, 7)], source="test")
    _age(Path(store.path(store.key_of(ten.uri))), 10 * DAY)
    fresh = write_snapshot(store, "adhoc", [eval_snap_table(eval_df, 9)], source="test")
    store.write_bytes("runs/retrain_cancer/r4/train/.tmp-fedcba987654-model.skops", b"live writer")
    shutil.copytree(base, base.parent / "pristine", symlinks=True)
    return {
        "pristine": base.parent / "pristine",
        "base": base,
        "orphans": orphans,
        "temporaries": temporaries,
        "recent": {store.key_of(ten.uri), store.key_of(fresh.uri)},
        "ten_days": store.key_of(ten.uri),
        "fresh": store.key_of(fresh.uri),
    }


def eval_snap_table(df, n):
    import pyarrow as pa

    return pa.Table.from_pandas(df.head(n).reset_index(drop=True), preserve_index=False)


@pytest.fixture
def root(history):
    """The history store, restored (mtimes kept) for each test at the path its URIs name."""
    base, pristine = history["base"], history["pristine"]
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(pristine, base, symlinks=True)
    return base


def files_of(path: Path) -> dict[str, int]:
    return {
        str(p.relative_to(path)): p.lstat().st_size for p in path.rglob("*") if p.is_symlink() or p.is_file()
    }


def _gc(capsys, root, *argv):
    uri = root if isinstance(root, str) else f"file://{root}"
    code = main(["--root", uri, "gc", "--keep-runs", str(KEEP), "--json", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()  # Airflow may log a line first (the S3 connection's credentials)
    return json.loads("\n".join(lines[lines.index("{") :]))


def _reported(doc) -> tuple[set[str], set[str]]:
    units = {i["key"] for c in gc.CATEGORIES if c != "temporaries" for i in doc["items"][c]}
    return units, {i["key"] for i in doc["items"]["temporaries"]}


def _under(key: str, units: set[str]) -> bool:
    return any(key == u or key.startswith(u + "/") for u in units)


# --------------------------------------------------------------------------- dry run
def test_dry_run_reports_exactly_the_orphans_and_deletes_nothing(root, history, capsys):
    before = files_of(root)
    doc = _gc(capsys, root)
    units, temps = _reported(doc)
    assert units == history["orphans"]
    assert temps == history["temporaries"]
    assert doc["dry_run"] is True
    assert files_of(root) == before
    assert not units & history["recent"]


def test_reported_bytes_are_the_sizes_of_the_orphan_files(root, history, capsys):
    doc = _gc(capsys, root)
    sizes = files_of(root)
    expected = sum(s for k, s in sizes.items() if _under(k, history["orphans"]))
    expected += sum(sizes[k] for k in history["temporaries"])
    assert doc["total"]["bytes"] == expected
    assert doc["total"]["count"] == len(history["orphans"]) + len(history["temporaries"])
    by_cat = doc["summary"]
    assert by_cat["runs"]["count"] == 1 and by_cat["drift_history"]["count"] == 3
    assert by_cat["predictions"]["count"] == 3 and by_cat["drift_reports"]["count"] == 2


def test_text_output_lists_items_with_verbose(root, history, capsys):
    code = main(["--root", f"file://{root}", "gc", "--keep-runs", str(KEEP), "--verbose"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("Would remove (dry run; --apply removes)")
    for key in history["orphans"]:
        assert key in out
    assert "total" in out


def test_a_store_copied_elsewhere_keeps_its_references(root, history, tmp_path, capsys):
    """Its records still name the old root's URIs: references are matched by their layout key."""
    moved = tmp_path / "moved"
    shutil.copytree(root, moved, symlinks=True)
    units, temps = _reported(_gc(capsys, moved))
    assert units == history["orphans"] and temps == history["temporaries"]


# --------------------------------------------------------------------------- apply
def test_apply_removes_exactly_the_orphans_and_stale_temporaries(root, history, capsys):
    before = files_of(root)
    doc = _gc(capsys, root, "--apply")
    assert doc["dry_run"] is False and doc["skipped"] == []
    units, temps = _reported(doc)
    assert units == history["orphans"] and temps == history["temporaries"]
    gone = {k for k in before if _under(k, history["orphans"]) or k in history["temporaries"]}
    assert set(files_of(root)) == set(before) - gone
    assert (root / "landing/cancer/2024-01/part-00000.parquet").exists()
    assert (root / "runs/retrain_cancer/r4/train/.tmp-fedcba987654-model.skops").exists()
    assert not (root / "predictions/ghost").exists()  # emptied folders go too
    # a second pass finds nothing more
    again = _gc(capsys, root, "--apply")
    assert again["total"] == {"count": 0, "bytes": 0}


def test_after_apply_every_version_loads_and_its_snapshots_verify(root, capsys):
    _gc(capsys, root, "--apply")
    store = ArtifactStore(f"file://{root}")
    registry = ModelRegistry(store)
    checked = 0
    for name in registry.list_models():
        for mv in registry.list_versions(name):
            model, loaded = registry.load(name, mv.version)  # sha256-pinned, safe loader
            assert loaded.version == mv.version and hasattr(model, "predict")
            for ref in ("train_dataset", "eval_dataset"):
                uri = (mv.lineage.get(ref) or {}).get("uri")
                snap = read_manifest(store, uri)
                assert store.sha256(store.key_of(snap.data_uri)) == snap.sha256
                assert read_table(store, uri).num_rows == snap.rows
                checked += 1
            run = f"runs/{mv.lineage['dag_id']}/{mv.lineage['run_id']}"
            assert store.exists(f"{run}/train/model.skops") and store.exists(f"{run}/evaluate/verdict.json")
    assert checked == 2 * 5  # four cancer versions and one wine version
    assert registry.get_alias("cancer") is not None and len(registry.history("cancer")) >= 4


def test_after_apply_the_champions_reproduce_from_their_lineage(root, capsys):
    """What gc keeps is enough to rebuild the champions: `mlops models reproduce` after `--apply`."""
    _gc(capsys, root, "--apply")
    registry = ModelRegistry(ArtifactStore(f"file://{root}"))
    for name in ("cancer", "wine"):
        champion = registry.get_alias(name) or max(v.version for v in registry.list_versions(name))
        code = main(["--root", f"file://{root}", "models", "reproduce", name, str(champion), "--json"])
        out, err = capsys.readouterr()
        doc = json.loads(out[out.index("{") :])
        assert code == 0, (name, err, doc.get("differences"))
        assert doc["identical"] is True, doc["differences"]


def test_after_apply_drift_and_scoring_still_work(root, capsys):
    _gc(capsys, root, "--apply")
    store = ArtifactStore(f"file://{root}")
    registry = ModelRegistry(store)
    history_files = store.list_dir("drift/cancer/history")
    assert len(history_files) == KEEP
    for name in history_files:
        entry = store.read_json(f"drift/cancer/history/{name}")
        assert store.exists(store.key_of(entry["report_uri"]))
        read_manifest(store, entry["window_uri"])
    sets = store.list_dir("predictions/cancer/score_cancer")
    assert sets == ["s2", "s3"]
    for s in sets:
        manifest = store.read_json(f"predictions/cancer/score_cancer/{s}/manifest.json")
        key = store.key_of(manifest["output_uri"])
        assert store.sha256(key) == manifest["output_sha256"]
        read_manifest(store, manifest["input_uri"])
    window = detect_drift(
        DriftParams("cancer", features=WATCHED),
        dataset=store.read_json(f"drift/cancer/history/{history_files[-1]}")["window_uri"],
        store=store,
        registry=registry,
    )
    assert len(window.history) == KEEP  # the policy still sees the kept windows


def test_keep_runs_zero_and_older_than_zero_still_keep_what_versions_need(root, history, capsys):
    doc = _gc(capsys, root, "--keep-runs", "0", "--older-than", "0", "--apply")
    removed, _ = _reported(doc)
    assert history["orphans"] <= removed
    assert history["ten_days"] in removed and history["fresh"] not in removed
    store = ArtifactStore(f"file://{root}")
    registry = ModelRegistry(store)
    for name in registry.list_models():
        for mv in registry.list_versions(name):
            registry.load(name, mv.version)
            read_manifest(store, mv.lineage["train_dataset"]["uri"])
    # with nothing kept by count, only what versions reference (and recent writes) stays in runs/
    runs = {f"retrain_cancer/{r}" for r in store.list_dir("runs/retrain_cancer")}
    assert runs == {"retrain_cancer/r1", "retrain_cancer/r2", "retrain_cancer/r3", "retrain_cancer/r4"}
    assert store.list_dir("predictions/cancer/score_cancer") == []


def test_a_unit_modified_after_planning_is_skipped(root, history):
    store = ArtifactStore(f"file://{root}")
    p = gc.plan(store, ModelRegistry(store), keep_runs=KEEP)
    target = "runs/retrain_cancer/crashed"
    (root / target / "train" / "train.json").touch()  # a writer came back meanwhile
    outcome = gc.apply(store, p)
    assert {s["key"] for s in outcome.skipped} == {target}
    assert (root / target / "train" / "model.skops").exists()


def test_a_snapshot_manifest_goes_before_its_data(root, history, monkeypatch):
    store = ArtifactStore(f"file://{root}")
    p = gc.plan(store, ModelRegistry(store), keep_runs=KEEP)
    order = []
    real_unlink = os.unlink
    monkeypatch.setattr(gc.os, "unlink", lambda path: (order.append(path), real_unlink(path))[1])
    adhoc = next(u for u in p.orphans if u.key.startswith("datasets/adhoc/"))
    assert gc.remove_unit(store, adhoc, time.time() - 3600) is None
    assert [Path(x).name for x in order] == ["manifest.json", "data.parquet"]


def test_reusing_an_old_snapshot_marks_it_in_use(root, history):
    store = ArtifactStore(f"file://{root}")
    key = next(k for k in history["orphans"] if k.startswith("datasets/adhoc/"))
    table = read_table(store, store.uri(key))
    again = write_snapshot(store, "adhoc", [table], source="test")
    assert again.reused and store.key_of(again.uri) == key
    p = gc.plan(store, ModelRegistry(store), keep_runs=KEEP)
    assert key in p.kept and "modified within" in p.kept[key]


# --------------------------------------------------------------------------- hostile
def test_symlinks_out_of_the_root_are_not_followed(root, tmp_path, capsys):
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "secret.json").write_text('{"uri": "datasets/x/' + "a" * 64 + '"}')
    (outside / "deep" / "data.parquet").write_bytes(b"precious")
    # inside an orphan run folder, a folder link and a file link; a whole snapshot and a DAG folder
    # that are links
    run = root / "runs" / "evil_dag" / "old_run" / "task"
    run.mkdir(parents=True)
    (run / "result.json").write_text("{}")
    os.symlink(outside, run / "escape")
    os.symlink(outside / "secret.json", run / "secret.json")
    os.symlink(outside, root / "datasets" / "adhoc" / ("b" * 64))
    os.symlink(outside, root / "runs" / "linked_dag")
    _age(root / "runs" / "evil_dag", 60 * DAY)
    _age(root / "datasets" / "adhoc", 60 * DAY)
    doc = _gc(capsys, root, "--keep-runs", "0", "--older-than", "0", "--apply")
    assert sorted(p.relative_to(outside).as_posix() for p in outside.rglob("*")) == [
        "deep",
        "deep/data.parquet",
        "secret.json",
    ]
    assert (outside / "deep" / "data.parquet").read_bytes() == b"precious"
    assert "runs/evil_dag/old_run" in {i["key"] for i in doc["items"]["runs"]}
    assert not (root / "runs" / "evil_dag").exists()  # the links went as links
    assert (root / "runs" / "linked_dag").is_symlink()  # a linked folder is not entered
    assert (root / "datasets" / "adhoc" / ("b" * 64)).is_symlink()
    assert "runs/linked_dag" in doc["symlinks_not_followed"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--keep-runs", "-1"], "--keep-runs must be a whole number of runs >= 0"),
        (["--keep-runs", "ten"], "--keep-runs must be a whole number of runs >= 0"),
        (["--older-than", "abc"], "--older-than must be a number of days >= 0"),
        (["--older-than", "-3"], "--older-than must be a number of days >= 0"),
        (["--older-than", "nan"], "--older-than must be a number of days >= 0"),
        (["--dry-run", "--apply"], "not allowed with argument"),
    ],
)
def test_bad_options_are_refused_naming_the_option(root, capsys, argv, expected):
    before = files_of(root)
    code = main(["--root", f"file://{root}", "gc", *argv])
    _, err = capsys.readouterr()
    assert code == 2 and expected in err and err.count("\n") == 1, err
    assert files_of(root) == before


def test_the_filesystem_root_is_refused(capsys):
    code = main(["--root", "file:///", "gc", "--apply"])
    _, err = capsys.readouterr()
    assert code == 2 and "not the filesystem root" in err


def test_an_unreadable_registry_removes_nothing(root, capsys):
    before = files_of(root)
    (root / "registry" / "cancer" / "versions" / "2" / "metadata.json").write_text("{not json")
    code = main(["--root", f"file://{root}", "gc", "--apply", "--older-than", "0"])
    _, err = capsys.readouterr()
    assert code == 2 and "cannot read the model registry" in err and "nothing removed" in err
    assert set(files_of(root)) == set(before)


# --------------------------------------------------------------------------- object store
@pytest.mark.parametrize("kind", ["s3", "gs"])
def test_gc_on_an_object_store_removes_the_orphan_and_keeps_what_a_version_references(
    kind, request, monkeypatch, capsys
):
    import pyarrow as pa

    from mlops_provider.hooks.artifacts import ArtifactStoreHook

    obj_root = request.getfixturevalue(f"{kind.replace('gs', 'gcs')}_root")
    store = ArtifactStoreHook(obj_root, "mlops_s3" if kind == "s3" else "mlops_gcs").get_store()
    table = pa.table({"x": list(range(50)), "y": [i % 2 for i in range(50)]})
    used = write_snapshot(store, "s3data", [table], source="test")
    orphan = write_snapshot(store, "s3data", [table.slice(0, 10)], source="test")
    store.write_json("runs/dag/old/task/result.json", {"note": "no reference"})
    store.write_json("runs/dag/kept/task/result.json", {"input": used.uri})
    registry = ModelRegistry(store)
    registry.register(
        "s3model",
        b"not a real model",
        run_key="dag/kept/register",
        lineage={"train_dataset": {"uri": used.uri}, "dag_id": "dag", "run_id": "kept"},
    )
    monkeypatch.setenv("MLOPS_STALE_TEMPORARY_SECONDS", "0")  # objects cannot be aged: no grace
    dry = _gc(capsys, obj_root, "--keep-runs", "0", "--older-than", "0")
    assert _reported(dry)[0] == {store.key_of(orphan.uri), "runs/dag/old"}
    assert store.exists(f"{store.key_of(orphan.uri)}/manifest.json")
    done = _gc(capsys, obj_root, "--keep-runs", "0", "--older-than", "0", "--apply")
    assert _reported(done)[0] == _reported(dry)[0]
    assert not store.exists(f"{store.key_of(orphan.uri)}/manifest.json")
    assert not store.exists(f"{store.key_of(orphan.uri)}/data.parquet")
    assert not store.exists("runs/dag/old/task/result.json")
    snap = read_manifest(store, used.uri)
    assert store.sha256(store.key_of(snap.data_uri)) == snap.sha256
    assert store.exists("runs/dag/kept/task/result.json")
