"""Helpers that know nothing of machine learning: atomic writes, checkpoint files, device and
precision choice, seeding, the environment record, console logging, file locks."""
