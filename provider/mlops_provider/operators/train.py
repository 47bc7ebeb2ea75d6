"""TrainModelOperator: an allow-listed scikit-learn estimator in a Pipeline, seeded and reproducible."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlops_provider.operators._base import MlopsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class TrainModelOperator(MlopsBaseOperator):
    """Fit ``estimator`` (an import path on the allow-list) with ``params`` on a snapshot.

    :param dataset: training snapshot URI or the upstream ``ExtractOperator``'s result.
    :param label_column: the label column (``label`` is accepted too: it is the same argument).
    :param estimator: e.g. ``"sklearn.ensemble.HistGradientBoostingClassifier"`` (templated).
    :param model_params: estimator parameters (templated; with ``render_template_as_native_obj=True``
        on the DAG, ``"{{ params.model_params }}"`` passes the Params form's JSON object).
    :param features: feature columns (default: every column but the label and ``exclude``).
    :param categorical: columns to treat as categories even if numeric.
    :param exclude: columns never used as features (ids, timestamps).
    :param seed: random seed (``random_state`` unless ``model_params`` sets it).
    :param positive_label: for a binary label, the class the binary metrics are about (templated;
        required unless the labels are 0/1 or False/True); empty for multiclass and regression.
    :param gate_metrics: metric names the model gate will use (thresholds and compare metric):
        checked against the task the labels turn out to be (binary or multiclass) before fitting.
    :param trusted_types: extra types the saved model may hold (see serialization).
    :return: ``model_uri``, ``model_sha256``, the feature spec, effective params, rows, timing and
        the training dataset's URI and sha256.
    """

    template_fields: Sequence[str] = (
        "dataset",
        "estimator",
        "model_params",
        "seed",
        "features",
        "label_column",
        "positive_label",
        "gate_metrics",
        "artifact_root",
    )
    ui_color = "#e3f6e3"

    def __init__(
        self,
        *,
        dataset: Any,
        label_column: str | None = None,
        estimator: str = "sklearn.ensemble.HistGradientBoostingClassifier",
        model_params: Any = None,
        features: list[str] | None = None,
        categorical: list[str] | None = None,
        exclude: list[str] | None = None,
        seed: Any = 42,
        positive_label: Any = None,
        gate_metrics: Any = None,
        trusted_types: list[str] | None = None,
        label: str | None = None,
        artifact_root: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(artifact_root=artifact_root, **kwargs)
        self.dataset = dataset
        self.label_column = label_column or label  # 'label' itself is a BaseOperator property
        self.estimator = estimator
        self.model_params = model_params
        self.features = features
        self.categorical = categorical
        self.exclude = exclude
        self.seed = seed
        self.positive_label = positive_label
        self.gate_metrics = gate_metrics
        self.trusted_types = trusted_types

    def _seed(self) -> int:
        from mlops_provider.operators.config import check_seed

        return check_seed(self, self.seed)

    def _check_gate_metrics(self, spec) -> None:
        """Before fitting: the gate's metrics must fit what the labels turned out to be."""
        from mlops_provider.core import metrics as M

        names = self.gate_metrics
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        for name in names or []:
            M.check_fit(
                M.resolve(name, "gate_metrics", self.owner_name()),
                spec.kind,
                "gate_metrics",
                f"{self.owner_name()} (the label {spec.label!r} is {spec.kind}, {len(spec.classes)} classes)"
                if spec.kind != "regression"
                else self.owner_name(),
            )

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.datasets import read_dataframe, read_manifest
        from mlops_provider.core.modeling import make_estimator, train_model
        from mlops_provider.core.serialization import dump_model

        if not isinstance(self.label_column, str) or not self.label_column:
            raise self.param_error("label_column", "the name of the label column", self.label_column)
        seed = self._seed()
        params = self.as_dict(self.model_params, "model_params")
        make_estimator(self.estimator, params, seed, self.owner_name())  # fail fast, before any I/O
        store = self.store()
        snap = read_manifest(store, self.as_uri(self.dataset, "dataset"))
        df = read_dataframe(store, snap.uri)
        features = self.features
        if features is None:
            features = [c for c in df.columns if c != self.label_column and c not in set(self.exclude or [])]
        model, result = train_model(
            df,
            label=self.label_column,
            estimator=self.estimator,
            params=params,
            features=list(features),
            categorical=self.categorical,
            seed=seed,
            positive_label=self.positive_label,
            owner=self.owner_name(),
            before_fit=self._check_gate_metrics,
        )
        data = dump_model(model, self.trusted_types or ())
        folder = self.run_folder(context)
        sha = store.write_bytes(f"{folder}/model.skops", data)
        out = result.to_dict()
        out.update(
            model_uri=store.uri(f"{folder}/model.skops"),
            model_sha256=sha,
            model_bytes=len(data),
            dataset={
                "uri": snap.uri,
                "sha256": snap.sha256,
                "rows": snap.rows,
                "source": snap.source,
                "query": snap.query,
            },
        )
        store.write_json(f"{folder}/train.json", out)
        self.lineage_record = {
            "inputs": [(snap.data_uri, snap.columns)],
            "outputs": [out["model_uri"]],
            "step": "train",
            "details": {"estimator": self.estimator, "model_sha256": sha, "seed": seed, "rows": result.rows},
        }
        self.log.info(
            "Trained %s on %d rows in %.1fs; model %s (sha256 %s)",
            self.estimator,
            result.rows,
            result.train_seconds,
            out["model_uri"],
            sha,
        )
        return out
