"""Data utilities of the platform: synthetic instruction streams for local ablations."""

from biollm_platform.data.make_instructions import TASKS, make_instructions, write_instructions

__all__ = ["TASKS", "make_instructions", "write_instructions"]
