"""airflow-provider-mlops: routine, observable, safe model retraining on Apache Airflow.

Nothing heavy is imported here: the scheduler imports operator modules while parsing DAG files.
"""

__version__ = "0.1.0"
