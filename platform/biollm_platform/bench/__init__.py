"""Benchmarks behind `biollm bench`: what the engine costs, measured in one process."""
