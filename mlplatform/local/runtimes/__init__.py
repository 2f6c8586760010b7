"""Runtimes that bring the local stack up: native processes, compose, and a fake for unit tests."""
