"""Notifications: quality-gate alerts by email, Slack, Amazon SNS, a JSON webhook or the task log.

* :mod:`.render` -- the message model (:class:`~.render.GateAlert`) and its text / HTML / Slack views;
* :mod:`.channels` -- channel configs, delivery, one module per channel (each through its provider's hook);
* :mod:`.collect` -- the gate results of a run, from XCom;
* :mod:`.notifier` / :mod:`.operator` -- ``QualityGateNotifier`` and ``GateAlertOperator``.

Nothing is imported here: the scheduler imports DAG files that use these often.
"""
