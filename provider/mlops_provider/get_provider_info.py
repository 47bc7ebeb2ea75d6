"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

Valid against Airflow's ``provider_info.schema.json`` (checked by a test, which also imports
every module and class listed here)."""

from __future__ import annotations

from mlops_provider import __version__
from mlops_provider.settings import config_section


def get_provider_info() -> dict:
    return {
        "package-name": "airflow-provider-mlops",
        "name": "MLOps",
        "description": "Model retraining as a routine, observable, safe operation: extract, validate "
        "(Great Expectations), train (scikit-learn), evaluate against the champion, register with "
        "lineage, and batch-score, on file://, S3 or GCS.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "MLOps",
                "external-doc-url": "https://pypi.org/project/airflow-provider-mlops/",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": "MLOps",
                "python-modules": [
                    "mlops_provider.operators.extract",
                    "mlops_provider.operators.validate",
                    "mlops_provider.operators.train",
                    "mlops_provider.operators.evaluate",
                    "mlops_provider.operators.register",
                    "mlops_provider.operators.batch_score",
                    "mlops_provider.operators.drift",
                    "mlops_provider.operators.estimate",
                    "mlops_provider.operators.partitions",
                    "mlops_provider.operators.managed",
                    "mlops_provider.operators.config",
                    "mlops_provider.operators.windows",
                    "mlops_provider.operators.reproduce",
                    "mlops_provider.notifications.operator",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "MLOps", "python-modules": ["mlops_provider.sensors.model_version"]}
        ],
        "triggers": [
            {
                "integration-name": "MLOps",
                "python-modules": [
                    "mlops_provider.triggers.new_data",
                    "mlops_provider.triggers.model_version",
                    "mlops_provider.triggers.champion",
                ],
            }
        ],
        "hooks": [
            {
                "integration-name": "MLOps",
                "python-modules": [
                    "mlops_provider.hooks.artifacts",
                    "mlops_provider.hooks.registry",
                    "mlops_provider.integrations.mlflow.hook",
                ],
            }
        ],
        # The MLflow model registry backend's connection (host = tracking URI); the SageMaker and
        # Vertex AI backends use the amazon / google providers' own connection types.
        "connection-types": [
            {
                "hook-class-name": "mlops_provider.integrations.mlflow.hook.MlflowRegistryHook",
                "connection-type": "mlflow",
            }
        ],
        # The registry page plugin is registered through the "airflow.plugins" entry point only: Airflow
        # loads provider-info plugins lazily (not in the api-server by default), and listing it in both
        # places makes the api-server report a duplicate-plugin import error.
        "notifications": ["mlops_provider.notifications.notifier.QualityGateNotifier"],
        "extra-links": [
            "mlops_provider.links.report.DataQualityReportLink",
            "mlops_provider.links.report.EvaluationReportLink",
            "mlops_provider.links.report.ModelVersionLink",
            "mlops_provider.links.report.SnapshotLink",
        ],
        # [mlops] in airflow.cfg: the artifact store and registry settings (env and Variables override)
        "config": config_section(),
    }
