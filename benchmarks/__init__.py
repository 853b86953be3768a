"""Benchmarks: this SDK side by side with raw aiohttp and Replicate's official client.

Run ``python -m benchmarks.run`` (or ``--quick``); see ``benchmarks/README.md``.
"""
