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

    def execute_step(self, context: Context) -> dict[str, Any]:
        from mlops_provider.core.steps.train import TrainParams, train

        params = self.params_for(
            TrainParams,
            label_column=self.label_column,
            estimator=self.estimator,
            model_params=self.model_params,
            features=self.features,
            categorical=self.categorical,
            exclude=self.exclude,
            seed=self.seed,
            positive_label=self.positive_label,
            gate_metrics=self.gate_metrics,
            trusted_types=self.trusted_types,
        )
        result = train(
            params, dataset=self.dataset, store=self.store(), run=self.run_info(context), caller=self.caller
        )
        self.lineage_record = result.lineage()
        return result.to_dict()
