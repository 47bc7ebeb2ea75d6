"""The plain-Python core: no Airflow imports. Each step is a function from URIs and plain config
to a small result object with ``to_dict()``."""
