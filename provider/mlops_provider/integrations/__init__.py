"""One folder per external service, each importing its client library only when used:

* :mod:`.mlflow` -- the MLflow model registry backend and its connection type;
* :mod:`.sagemaker` -- the SageMaker Model Registry backend and Batch Transform scoring requests;
* :mod:`.vertex` -- the Vertex AI Model Registry backend and batch prediction requests;
* :mod:`.bigquery` -- BigQuery as an extract source.
"""
