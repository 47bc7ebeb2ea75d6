#!/usr/bin/env bash
# `make airflow`: Airflow standalone (api-server, scheduler, dag-processor, triggerer) on
# 127.0.0.1:8080 (`PORT=8794 make airflow` for another port: the execution API URL, the base URL
# of links and alerts and the log-server ports follow) with the templates in ./dags and the same
# local setup as `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(.venv/bin/python scripts/localenv.py)"
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/python -c "from mlops_provider.examples.nycflights import seed_warehouse; import sys; sys.path.insert(0, 'scripts'); import localenv; seed_warehouse(localenv.WAREHOUSE)"
pw="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
cat <<MSG
Starting Airflow on $AIRFLOW__API__BASE_URL (Ctrl-C to stop)
  user: admin    password: in $pw (printed below once Airflow has created it)
  DAGs: mlops_retrain_scheduled, mlops_batch_score -- trigger with "Trigger DAG" and edit the Params form;
  use a logical date such as 2013-08-01 (the data is 2013).
  Model registry page: Browse -> Model registry, or $AIRFLOW__API__BASE_URL/mlops/
MSG
exec airflow standalone
