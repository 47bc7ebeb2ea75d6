"""An auth manager that grants reads per DAG (as FAB or Keycloak can be set up to), for the
registry page's authorization tests: SimpleAuthManager's users and tokens, with each user's
readable DAGs in ``MLOPS_TEST_DAG_READERS`` (JSON ``{"user": ["dag_a", ...]}``); the user
``root`` may do anything; nobody else may write, or read "all DAGs"."""

from __future__ import annotations

import json
import os

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager


class RestrictiveAuthManager(SimpleAuthManager):
    def is_authorized_dag(self, *, method, user, access_entity=None, details=None) -> bool:
        name = user.get_name()
        if name == "root":
            return True
        if method != "GET" or details is None or not details.id:
            return False
        readers = json.loads(os.environ.get("MLOPS_TEST_DAG_READERS", "{}"))
        return details.id in set(readers.get(name, ()))
