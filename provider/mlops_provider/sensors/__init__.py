"""Sensors: :class:`~mlops_provider.sensors.model_version.ModelVersionSensor`."""
