"""Demos of ``AsyncView``: a fan-out to a slow fake upstream."""
