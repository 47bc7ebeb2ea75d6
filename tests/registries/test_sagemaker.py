"""The SageMaker backend against moto_server (SageMaker Model Registry API + S3): model package
groups and versions, approval status as the champion, compare-and-set promotion, rollback, load
from S3, idempotent reruns (also after a crash between CreateModelPackage and the reference file),
and eight concurrent writers.

The SageMaker calls made here against moto for real (recorded from the client and asserted):
CreateModelPackageGroup (with Tags), DescribeModelPackageGroup, ListModelPackageGroups,
CreateModelPackage (InferenceSpecification/ModelDataUrl, CustomerMetadataProperties, ModelMetrics,
MetadataProperties, ModelApprovalStatus, ClientToken), DescribeModelPackage, ListModelPackages (by
group, by ModelApprovalStatus, sorted) and UpdateModelPackage (ModelApprovalStatus,
ApprovalDescription, CustomerMetadataProperties). moto accepts ClientToken without acting on it."""

from __future__ import annotations

import json
import uuid

import pytest

from mlops_provider.core.errors import IntegrityError, InvalidInputError, NotFoundError
from mlops_provider.core.registry import StaleAliasError
from mlops_provider.registries.sagemaker import SageMakerRegistry, group_name
from tests.registries.conftest import X, check_alias_chain, concurrent_register_and_promote, model_bytes

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlops-skops-serving:1"


@pytest.fixture
def s3_store(s3_root):
    from mlops_provider.hooks.artifacts import ArtifactStoreHook

    return ArtifactStoreHook().get_store()  # the s3:// root on moto, through the mlops_s3 connection


@pytest.fixture
def sm_conn(s3_server, monkeypatch):
    """An ``aws`` connection to moto with the packages' inference image in its extra."""
    conn = s3_server.connection()
    conn["extra"]["inference_image"] = IMAGE
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_SAGEMAKER", json.dumps(conn))
    return "mlops_sagemaker"


@pytest.fixture
def registry(s3_store, sm_conn):
    from mlops_provider.hooks.registry import get_registry

    reg = get_registry("sagemaker", sm_conn, s3_store)
    assert isinstance(reg, SageMakerRegistry) and reg.inference_image == IMAGE
    return reg


@pytest.fixture
def name():
    return f"m-{uuid.uuid4().hex[:8]}"


def statuses(sm, name) -> dict[int, str]:
    pages = sm.list_model_packages(ModelPackageGroupName=group_name(name), MaxResults=100)[
        "ModelPackageSummaryList"
    ]
    return {p["ModelPackageVersion"]: p["ModelApprovalStatus"] for p in pages}


def record_operations(client) -> list[str]:
    """The SageMaker API operations ``client`` sends (botocore's before-call event)."""
    ops: list[str] = []
    client.meta.events.register("before-call.sagemaker", lambda model, **_: ops.append(model.name))
    return ops


def test_register_promote_by_approval_rollback_and_load(registry, name, s3_server):
    sm = s3_server.client("sagemaker")
    ops = record_operations(registry.client)
    mv1, c1 = registry.register(
        name,
        model_bytes(1.0),
        run_key="d/r1/register",
        estimator="sklearn.linear_model.X",
        metrics={"roc_auc": 0.7, "rows": 20},
        verdict={"passed": True, "reason": "first"},
        lineage={"dag_id": "d", "run_id": "r1"},
        spec={"label": "y"},
    )
    mv2, c2 = registry.register(name, model_bytes(2.0), run_key="d/r2/register", metrics={"roc_auc": 0.8})
    assert (mv1.version, c1, mv2.version, c2) == (1, True, 2, True)
    assert mv1.uri.startswith("arn:aws:sagemaker:us-east-1:") and mv1.uri.endswith(f"model-package/{name}/1")
    assert mv1.model_uri == registry.store.uri(
        f"registry/{name}/packages/{mv1.model_uri.split('/')[-2]}/model.skops"
    )

    # what SageMaker holds: the package points at the model on S3 and carries the key fields
    desc = sm.describe_model_package(ModelPackageName=mv1.uri)
    assert desc["ModelPackageGroupName"] == name and desc["ModelApprovalStatus"] == "PendingManualApproval"
    assert desc["InferenceSpecification"]["Containers"] == [{"Image": IMAGE, "ModelDataUrl": mv1.model_uri}]
    props = desc["CustomerMetadataProperties"]
    assert (
        props["mlops:sha256"],
        props["mlops:run-key"],
        props["mlops:verdict"],
        props["mlops:metric:roc_auc"],
    ) == (mv1.model_sha256, "d/r1/register", "passed", "0.7")
    assert desc["MetadataProperties"] == {"GeneratedBy": "airflow:d/r1"}
    stats_uri = desc["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert registry.store.read_json(registry.store.key_of(stats_uri))["metrics"] == {
        "roc_auc": 0.7,
        "rows": 20,
    }
    assert registry.get_version(name, 1).to_dict() == mv1.to_dict()  # full record from metadata.json on S3

    # champion = the one Approved package; promotion is a compare-and-set on the alias log
    registry.promote(name, 1, actor="t", reason="first champion", expected_current=None)
    assert statuses(sm, name) == {1: "Approved", 2: "PendingManualApproval"}
    with pytest.raises(StaleAliasError, match="is v1, not vNone"):
        registry.promote(name, 2, actor="late", reason="stale", expected_current=None)
    assert statuses(sm, name) == {1: "Approved", 2: "PendingManualApproval"}
    registry.promote(name, 2, actor="t", reason="better", expected_current=1)
    assert statuses(sm, name) == {1: "Rejected", 2: "Approved"}
    assert (
        "champion -> v2 by t: better"
        in sm.describe_model_package(ModelPackageName=mv2.uri)["ApprovalDescription"]
    )
    model, got = registry.load(name, "champion")  # from S3, sha256-checked
    assert got.version == 2 and model.predict_proba(X[:3]).shape == (3, 2)

    registry.rollback(name, actor="oncall", reason="v2 misbehaves")
    assert statuses(sm, name) == {1: "Approved", 2: "Rejected"} and registry.get_alias(name) == 1
    assert [(e.version, e.previous_version) for e in registry.history(name)] == [(1, None), (2, 1), (1, 2)]
    # approval updates keep the package's metadata (moto drops properties an update does not resend)
    assert sm.describe_model_package(ModelPackageName=mv1.uri)["CustomerMetadataProperties"] == props
    assert registry.get_version(name, 1).to_dict() == mv1.to_dict()

    # an alias other than champion lives in the log only
    registry.set_alias(name, 2, alias="shadow", actor="t", reason="shadow traffic")
    assert registry.get_alias(name, "shadow") == 2 and statuses(sm, name) == {1: "Approved", 2: "Rejected"}

    assert set(ops) == {
        "DescribeModelPackageGroup",
        "CreateModelPackageGroup",
        "CreateModelPackage",
        "DescribeModelPackage",
        "ListModelPackages",
        "UpdateModelPackage",
    }, sorted(set(ops))

    # a file swapped on S3 after registration is refused
    registry.store.write_bytes(registry.store.key_of(mv1.model_uri), model_bytes(7.0))
    with pytest.raises(IntegrityError, match="pins"):
        registry.load(name, 1)


def test_rerun_is_idempotent_and_names_map_to_groups(registry, s3_server):
    ops = record_operations(registry.client)
    name = f"flights_delay.{uuid.uuid4().hex[:6]}"  # '_' and '.' are not allowed in a group name
    group = group_name(name)
    assert group.startswith("flights-delay-") and len(group) <= 63
    first, created = registry.register(name, model_bytes(), run_key="d/r1/register")
    registry.promote(name, first.version, actor="t", reason="r")
    again, created_again = registry.register(name, model_bytes(), run_key="d/r1/register")
    assert (again.version, created, created_again) == (1, True, False) and again.to_dict() == first.to_dict()
    # a first attempt that stopped right after CreateModelPackage (no package.json yet) is recovered
    folder = again.model_uri.rsplit("/", 1)[0]
    registry.store.delete(registry.store.key_of(folder) + "/package.json")
    creates = ops.count("CreateModelPackage")
    recovered, created_recovered = registry.register(name, model_bytes(), run_key="d/r1/register")
    assert (recovered.version, created_recovered, ops.count("CreateModelPackage")) == (1, False, creates)
    assert registry.store.read_json(registry.store.key_of(folder) + "/package.json")["arn"] == first.uri
    other, created_other = registry.register(name, model_bytes(3.0), run_key="d/r1/register")
    assert (other.version, created_other) == (2, True)
    assert registry.find_by_run_key(name, "d/r1/register").version == 2
    assert registry.find_by_run_key(name, "d/r9/register") is None
    assert name in registry.list_models() and [v.version for v in registry.list_versions(name)] == [1, 2]
    assert "ListModelPackageGroups" in ops
    sm = s3_server.client("sagemaker")
    assert sm.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupDescription"] == (
        f"mlops model: {name}"
    )


def test_errors(registry, name, store, s3_store, sm_conn, monkeypatch):
    from mlops_provider.hooks.registry import get_registry

    registry.register(name, model_bytes(), run_key="r")
    with pytest.raises(NotFoundError, match=r"has no version 5 in SageMaker.*registered versions: \[1\]"):
        registry.get_version(name, 5)
    with pytest.raises(NotFoundError, match=r"registered versions: none"):
        registry.get_version("never-registered", 1)
    with pytest.raises(NotFoundError, match="no 'champion' alias yet"):
        registry.resolve(name, "@champion")
    assert registry.list_versions("never-registered") == []
    with pytest.raises(InvalidInputError, match=r"must be an s3:// URI\. Got 'file://"):
        get_registry("sagemaker", sm_conn, store)  # a local artifact root
    monkeypatch.delenv("MLOPS_REGISTRY_CONN_ID", raising=False)
    with pytest.raises(InvalidInputError, match="needs a connection.*'registry_conn_id'"):
        get_registry("sagemaker", None, s3_store)
    with pytest.raises(InvalidInputError, match="must name a defined Airflow connection.*'aws_missing'"):
        get_registry("sagemaker", "aws_missing", s3_store)


def test_eight_concurrent_writers(s3_store, s3_server, name, eight_models):
    # no inference image: packages without InferenceSpecification (the file is named in the properties)
    registry = SageMakerRegistry(s3_store, s3_server.client("sagemaker"))
    champion = concurrent_register_and_promote(registry, name, eight_models)
    sm = s3_server.client("sagemaker")
    approved = [v for v, s in statuses(sm, name).items() if s == "Approved"]
    assert approved == [champion] and len(statuses(sm, name)) == 8
    assert check_alias_chain(registry, name) == champion
    model, mv = registry.load(name)
    assert mv.version == champion and "InferenceSpecification" not in sm.describe_model_package(
        ModelPackageName=mv.uri
    )
