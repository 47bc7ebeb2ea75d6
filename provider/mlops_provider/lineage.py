"""OpenLineage for the operators, used only when the openlineage provider is installed.

Each operator records, while it runs, the URIs it read and wrote and a few facts (the GX summary,
the verdict, the model version); :func:`operator_lineage` turns them into an ``OperatorLineage``
with datasets and custom run facets. Without the provider nothing here is imported.
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlparse

PRODUCER = "https://pypi.org/project/airflow-provider-mlops/"


def dataset_for(uri: str, schema: list[dict[str, str]] | None = None):
    from airflow.providers.common.compat.openlineage.facet import (
        Dataset,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )

    u = urlparse(uri)
    if u.scheme in ("", "file"):
        namespace, name = "file", u.path or uri
    elif "://" in uri:
        namespace, name = f"{u.scheme}://{u.netloc}", u.path.lstrip("/") or "/"
    else:
        namespace, name = "mlops", uri
    facets = {}
    if schema:
        facets["schema"] = SchemaDatasetFacet(
            fields=[SchemaDatasetFacetFields(name=c["name"], type=c.get("type", "")) for c in schema]
        )
    return Dataset(namespace=namespace, name=name, facets=facets)


@functools.lru_cache(maxsize=1)
def _facet_class():
    import attrs
    from airflow.providers.common.compat.openlineage.facet import RunFacet

    @attrs.define
    class MlopsRunFacet(RunFacet):
        """What the MLOps step decided: data-quality summary, model verdict or model version."""

        step: str
        details: dict

        @staticmethod
        def _get_schema() -> str:
            return PRODUCER + "spec/MlopsRunFacet.json"

    return MlopsRunFacet


def operator_lineage(record: dict[str, Any] | None):
    """``record``: ``{"inputs": [uri or (uri, schema)], "outputs": [...], "step": str,
    "details": dict, "sql": str?}``."""
    if not record:
        return None
    from airflow.providers.openlineage.extractors import OperatorLineage

    def ds(item):
        if isinstance(item, (list, tuple)):
            return dataset_for(item[0], item[1])
        return dataset_for(item)

    run_facets = {}
    if record.get("details") is not None:
        run_facets["mlops"] = _facet_class()(step=record.get("step", ""), details=record["details"])
    job_facets = {}
    if record.get("sql"):
        from airflow.providers.common.compat.openlineage.facet import SQLJobFacet

        job_facets["sql"] = SQLJobFacet(query=record["sql"])
    return OperatorLineage(
        inputs=[ds(i) for i in record.get("inputs", [])],
        outputs=[ds(o) for o in record.get("outputs", [])],
        run_facets=run_facets,
        job_facets=job_facets,
    )
