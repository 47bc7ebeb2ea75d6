"""Notifications: quality-gate alerts by email, Slack, Amazon SNS or a JSON webhook.

Import from the module, e.g.
``from mlops_provider.notifications.quality_gate import GateAlertOperator, QualityGateNotifier``.
Nothing is imported here: the scheduler imports DAG files that use these often.
"""
