"""Experiment tracking in Weights & Biases.

- ``sinks``: the sinks a run's ``logging`` section enables (TensorBoard, CSV, W&B), for train and sweeps.
- ``tensorboard_sink``, ``csv_sink``: ``<run dir>/tensorboard/`` event files and ``<run dir>/metrics.csv``.
- ``mode``: which W&B mode a run uses (``logging.wandb_mode``, ``WANDB_MODE``, offline fallback, an API
  key from ``WANDB_API_KEY`` or netrc) and which project, entity, folder and resume policy.
- ``secrets``: credentials kept out of every file BioLLM writes.
- ``wandb_sink``: ``WandbSink``, the ``MetricsSink`` that tracks one trial as one W&B run.
- ``offline_reader``: an offline run read back with W&B's own reader (``wandb leet inspect``).

Import the submodules directly; this package imports nothing so that ``secrets`` and ``mode`` stay
cheap to import (wandb takes about a second).
"""
