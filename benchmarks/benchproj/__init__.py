"""A small Django project used only by the benchmark harness.

Which URLconf a server process mounts and which middleware it runs are chosen
by environment variables (see ``settings.py``), so that every variant of a
scenario runs with byte-for-byte identical settings otherwise.
"""
