"""Several proxy worker processes on one host acting as one proxy (``litellm --num_workers N``).

LiteLLM's ``--num_workers`` runs the app in N processes (uvicorn workers, spawned, so each imports
the hook and builds its own engine). What must be one across them is made one here:

* :mod:`~biorouter.workers.topology`: how many workers this process belongs to, the folder they
  share, and the start-up check that the spend ledger is shared (Redis) when there are several.
* :mod:`~biorouter.workers.control`: the control file: every reload and profile switch is appended
  as an event with a sequence number; each worker applies the events it has not seen.
* :mod:`~biorouter.workers.tally`: each worker's session counters in a file of its own, summed for
  ``/biorouter/status`` and the session summary.
* :mod:`~biorouter.workers.sync`: the per-worker task that watches the control file and writes the tally.
* :mod:`~biorouter.workers.launch`: ``biorouter serve``'s launcher: prepares the shared folders,
  forwards SIGHUP to the workers as a reload, runs LiteLLM's own CLI, and logs the summed summary.

Imports only the standard library, pydantic and biorouter's small models (never the engine): the
launcher's parent process stays light.
"""
