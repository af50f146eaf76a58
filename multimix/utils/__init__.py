"""Helpers that know nothing of machine learning: file locks and the machine's capabilities."""
