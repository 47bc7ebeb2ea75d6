"""The Vertex AI backend at its client seam: a fake of the ``aiplatform`` calls it makes (request
and response shapes of the Vertex AI API reference, call signatures checked against the installed
SDK; see ``fake_aiplatform``), with the model files on a real GCS emulator. Covers register
(first upload with model_id, later ones with parent_model), labels, aliases as Vertex version
aliases, compare-and-set promotion, rollback, load from GCS, reruns, the connection, and eight
concurrent writers. Not covered: the SDK's own request building, auth, LROs, the real service."""

from __future__ import annotations

import uuid

import pytest

from mlops_provider.core.errors import IntegrityError, InvalidInputError, NotFoundError
from mlops_provider.core.registry import StaleAliasError
from mlops_provider.registries import vertex as vertex_module
from mlops_provider.registries.vertex import VertexRegistry, model_id
from tests.registries.conftest import X, check_alias_chain, concurrent_register_and_promote, model_bytes
from tests.registries.fake_aiplatform import FakeVertexAI, VersionInfo, sdk_signatures

PROJECT, LOCATION = "test-project", "europe-west4"


@pytest.fixture
def gcs_store(gcs_root):
    from mlops_provider.hooks.artifacts import ArtifactStoreHook

    return ArtifactStoreHook().get_store()  # the gs:// root on the emulator, through the mlops_gcs connection


@pytest.fixture
def fake():
    return FakeVertexAI()


@pytest.fixture
def registry(gcs_store, fake):
    return VertexRegistry(gcs_store, project=PROJECT, location=LOCATION, aiplatform=fake)


@pytest.fixture
def name():
    return f"m-{uuid.uuid4().hex[:8]}"


def test_the_fake_matches_the_installed_sdk():
    sig = sdk_signatures()
    assert list(VersionInfo._fields) == sig["VersionInfo"]
    for p in (
        "display_name",
        "artifact_uri",
        "serving_container_image_uri",
        "model_id",
        "parent_model",
        "is_default_version",
        "version_description",
        "labels",
        "sync",
        "project",
        "location",
        "credentials",
    ):
        assert p in sig["Model.upload"], p
    assert {"model_name", "version", "project", "location", "credentials"} <= set(sig["Model.__init__"])
    assert sig["ModelRegistry.add_version_aliases"] == ["new_aliases", "version"]
    assert sig["ModelRegistry.remove_version_aliases"] == ["target_aliases", "version"]
    assert {
        "uri",
        "version_id",
        "versioned_resource_name",
        "resource_name",
        "display_name",
        "labels",
        "version_aliases",
        "version_create_time",
    } <= set(sig["Model.properties"])
    with pytest.raises(TypeError, match="no parameter"):  # the fake refuses what the SDK would
        FakeVertexAI().Model.upload("img", artifact_uri="gs://b/x", version_labels={"a": "b"})


def test_register_labels_aliases_promotion_rollback_and_load(registry, fake, name):
    mv1, c1 = registry.register(
        name,
        model_bytes(1.0),
        run_key="d/r1/register",
        estimator="sklearn.linear_model.LogisticRegression",
        metrics={"roc_auc": 0.7},
        verdict={"passed": True, "reason": "first"},
        spec={"label": "y"},
    )
    mv2, c2 = registry.register(name, model_bytes(2.0), run_key="d/r2/register", metrics={"roc_auc": 0.8})
    resource = f"projects/{PROJECT}/locations/{LOCATION}/models/{name}"
    assert (mv1.version, c1, mv2.version, c2) == (1, True, 2, True)
    assert (mv1.uri, mv2.uri) == (f"{resource}@1", f"{resource}@2")
    folder = mv1.model_uri.rsplit("/", 1)[0]
    assert mv1.model_uri.startswith(
        registry.store.uri(f"registry/{name}/uploads/")
    ) and mv1.model_uri.endswith("/model.skops")

    # the recorded UploadModelRequests: model_id first, then parent_model and not the default version
    first, second = fake.requests("models.upload")
    assert (first["parent"], first["modelId"], first["parentModel"]) == (
        f"projects/{PROJECT}/locations/{LOCATION}",
        name,
        None,
    )
    assert (second["modelId"], second["parentModel"], second["model"]["versionAliases"]) == (
        None,
        resource,
        [],
    )
    assert first["model"]["artifactUri"] == folder and first["model"]["displayName"] == name
    labels = first["model"]["labels"]
    assert labels["mlops_verdict"] == "passed" and labels["mlops_sha256"] == mv1.model_sha256[:40]
    assert labels["mlops_estimator"] == "logisticregression" and labels["mlops_managed"] == "true"
    assert all(len(v) <= 63 and v == v.lower() for v in labels.values())
    assert "roc_auc=0.7" in first["model"]["versionDescription"]
    assert registry.store.exists(registry.store.key_of(folder) + "/metadata.json")  # the full record on GCS
    assert registry.get_version(name, 1).to_dict() == mv1.to_dict()
    assert fake.aliases_of(resource) == {"1": ["default"], "2": []}

    # champion = a Vertex version alias, moved by compare-and-set on the alias log
    registry.promote(name, 1, actor="t", reason="first", expected_current=None)
    with pytest.raises(StaleAliasError, match="is v1, not vNone"):
        registry.promote(name, 2, actor="late", reason="stale", expected_current=None)
    assert fake.aliases_of(resource) == {"1": ["champion", "default"], "2": []}
    registry.promote(name, 2, actor="t", reason="better", expected_current=1)
    assert fake.aliases_of(resource) == {"1": ["default"], "2": ["champion"]}
    assert fake.requests("models.mergeVersionAliases")[-2:] == [
        {"name": f"{resource}@1", "versionAliases": ["-champion"]},
        {"name": f"{resource}@2", "versionAliases": ["champion"]},
    ]
    model, got = registry.load(name, "@champion")  # bytes from GCS, sha256-checked
    assert got.version == 2 and model.predict_proba(X[:3]).shape == (3, 2)
    registry.rollback(name, actor="oncall", reason="v2 misbehaves")
    assert fake.aliases_of(resource) == {"1": ["champion", "default"], "2": []}
    assert [(e.version, e.previous_version, e.actor) for e in registry.history(name)] == [
        (1, None, "t"),
        (2, 1, "t"),
        (1, 2, "oncall"),
    ]
    assert registry.list_models() == [name] and [v.version for v in registry.list_versions(name)] == [1, 2]

    registry.store.write_bytes(registry.store.key_of(mv2.model_uri), model_bytes(7.0))
    with pytest.raises(IntegrityError, match="pins"):
        registry.load(name, 2)


def test_rerun_finds_its_version_by_label_and_repairs_the_alias(registry, fake, name):
    first, _ = registry.register(name, model_bytes(), run_key="d/r1/register")
    registry.promote(name, 1, actor="t", reason="r")
    resource = registry.resource_name(name)
    fake.merge_aliases(resource, "1", ["-champion"])  # a mirror update that got lost
    uploads = len(fake.requests("models.upload"))
    again, created = registry.register(name, model_bytes(), run_key="d/r1/register")
    assert (again.version, created, len(fake.requests("models.upload"))) == (1, False, uploads)
    assert fake.aliases_of(resource)["1"] == ["champion", "default"]
    searched = fake.requests("models.listVersions")
    assert any(r["filter"] and r["filter"].startswith('labels.mlops_run_key="') for r in searched)
    assert registry.register(name, model_bytes(3.0), run_key="d/r1/register")[0].version == 2


def test_first_registrations_racing_make_one_model(registry, gcs_store, fake, name):
    """Two writers both find no model: the second upload with the same model_id gets 409
    AlreadyExists and becomes version 2 of the model the first created."""
    other = VertexRegistry(gcs_store, project=PROJECT, location=LOCATION, aiplatform=fake)

    def first_writer_gets_in(request):
        fake.before_upload = None
        other.register(name, model_bytes(5.0), run_key="d/other/register")

    fake.before_upload = first_writer_gets_in
    mv, created = registry.register(name, model_bytes(1.0), run_key="d/mine/register")
    assert (mv.version, created) == (2, True) and [e for e in fake.errors if e != "NotFound"] == [
        "AlreadyExists"
    ]
    assert [r["modelId"] for r in fake.requests("models.upload")] == [name, name, None]
    assert list(fake.resources) == [registry.resource_name(name)]


def test_names_ids_and_errors(registry, fake, name, gcs_store, store):
    assert model_id("flights_delay") == "flights_delay"
    odd = model_id("Flights.Delay")
    assert odd.startswith("flights-delay-") and len(odd) <= 63 and model_id("9lives").startswith("m-9lives-")
    registry.register(name, model_bytes(), run_key="r")
    with pytest.raises(NotFoundError, match=r"has no version 4 in Vertex AI.*registered versions: \[1\]"):
        registry.get_version(name, 4)
    with pytest.raises(NotFoundError, match="registered versions: none"):
        registry.get_version("never-registered", 1)
    with pytest.raises(InvalidInputError, match="Vertex AI version alias.*'default'"):
        registry.promote(name, 1, actor="t", reason="r", alias="default")
    with pytest.raises(InvalidInputError, match="Vertex AI version alias.*'Champion'"):
        registry.promote(name, 1, actor="t", reason="r", alias="Champion")
    with pytest.raises(InvalidInputError, match=r"must be a gs:// URI\. Got 'file://"):
        VertexRegistry(store, project=PROJECT, location=LOCATION, aiplatform=fake)
    with pytest.raises(InvalidInputError, match="'location' parameter.*''"):
        VertexRegistry(gcs_store, project=PROJECT, location="", aiplatform=fake)
    assert registry.list_versions("never-registered") == [] and registry.find_by_run_key(name, "x") is None


def test_get_registry_uses_the_google_connection(gcs_store, fake, monkeypatch, name):
    """The hook boundary: project from the google_cloud_platform connection, location from its
    extra (default us-central1), the connection's credentials passed to every call."""
    from mlops_provider.hooks.registry import get_registry

    monkeypatch.setattr(vertex_module, "load_aiplatform", lambda: fake)  # the one seam
    reg = get_registry("vertex", "mlops_gcs", gcs_store)
    assert (reg.project, reg.location, type(reg.credentials).__name__) == (
        "test-project",
        "us-central1",
        "AnonymousCredentials",
    )
    reg.register(name, model_bytes(), run_key="r")
    (upload,) = fake.requests("models.upload")
    assert (
        upload["parent"] == "projects/test-project/locations/us-central1"
        and upload["credentials"] == "AnonymousCredentials"
    )
    assert upload["model"]["containerSpec"]["imageUri"] == vertex_module.DEFAULT_SERVING_IMAGE
    with pytest.raises(InvalidInputError, match="must name a defined Airflow connection.*'gcp_missing'"):
        get_registry("vertex", "gcp_missing", gcs_store)


def test_eight_concurrent_writers(registry, fake, name, eight_models):
    champion = concurrent_register_and_promote(registry, name, eight_models)
    aliases = fake.aliases_of(registry.resource_name(name))
    assert [vid for vid, a in aliases.items() if "champion" in a] == [str(champion)]
    assert [vid for vid, a in aliases.items() if "default" in a] == ["1"] and len(aliases) == 8
    assert len(fake.resources) == 1  # racing first registrations made one model
    assert check_alias_chain(registry, name) == champion
