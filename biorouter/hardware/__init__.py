"""Hardware: what this machine has, and which profile it can run.

- :mod:`~biorouter.hardware.probes`: GPU, host and Slurm probes (each may fail; none blocks for long).
- :mod:`~biorouter.hardware.resources`: the ``Resources`` snapshot and ``detect()``.
- :mod:`~biorouter.hardware.selection`: choosing the profile whose hardware needs are met.

May import: the top-level helpers, :mod:`biorouter.governance` and :mod:`biorouter.routing`.
Never classify, costs, serving, proxy, workers or cli.
"""
