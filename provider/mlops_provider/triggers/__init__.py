"""Triggers: :class:`~mlops_provider.triggers.new_data.NewDataTrigger` (asset watcher for new objects
under a prefix) and :class:`~mlops_provider.triggers.model_version.ModelVersionTrigger` (the deferred
wait of :class:`~mlops_provider.sensors.model_version.ModelVersionSensor`)."""
