"""Runs, waits, streams, fan-out, files and webhook waits, built on the resources."""
