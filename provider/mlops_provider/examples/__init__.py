"""Data for the demo and the end-to-end tests."""
