"""Sweeps: scenario x model x seed x weather grids, run on Ray, resumable, compared in one page.

``python -m carla_agent sweep --scenarios a,b --models m1.keras,m2.h5 --seeds 0-4 --out DIR``
(:mod:`carla_agent.cli.sweep`) runs :func:`carla_agent.sweep.run.run_sweep`:

* :mod:`~carla_agent.sweep.grid`: the cells, from options or a YAML sweep file;
* :mod:`~carla_agent.sweep.cell`: one cell, through ``record``'s own path (drive, log, video, report);
* :mod:`~carla_agent.sweep.ray_runner`: Ray tasks (one actor per CARLA server), retries, timeouts, Ctrl-C;
* :mod:`~carla_agent.sweep.pool`: which worker or server takes the next cell;
* :mod:`~carla_agent.sweep.manifest`: which cells are finished (a rerun skips them);
* :mod:`~carla_agent.sweep.table`, :mod:`~carla_agent.sweep.compare`: the tidy table and the HTML page;
* :mod:`~carla_agent.sweep.progress`: the progress bar over cells.

Only :mod:`~carla_agent.sweep.ray_runner` imports Ray, and only when a sweep runs:
importing this package (or any other) loads no Ray, TensorFlow or pygame.
docs/sweep.md has the usage, the cluster set-up and the scaling figures.
"""

from carla_agent.sweep.grid import Cell, SweepError, SweepSpec, load_sweep_file, parse_seeds

__all__ = ["Cell", "SweepError", "SweepSpec", "load_sweep_file", "parse_seeds"]
