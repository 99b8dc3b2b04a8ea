"""Serving: the ``BioRouter`` engine that ties classification, governance, routing, budgets and LiteLLM.

- :mod:`~biorouter.serving.engine`: ``BioRouter`` and the default router behind ``biorouter.acompletion``.
- :mod:`~biorouter.serving.orchestrate`: running a strategy plan (fallback, vote, judge) in process.
- :mod:`~biorouter.serving.adapter`: request in, signals and LiteLLM arguments out.
- :mod:`~biorouter.serving.reload`, :mod:`~biorouter.serving.validate`: loading and checking configuration,
  and swapping it on reload.
- :mod:`~biorouter.serving.session`, :mod:`~biorouter.serving.decision_log`, :mod:`~biorouter.serving.audit`:
  per-session totals, the debug routing log and the audit log of decisions.
- :mod:`~biorouter.serving.heap`: freezing the proxy's start-up heap out of garbage collection.

May import everything below it: the top-level helpers, governance, routing, classify, costs and hardware.
Never proxy, workers, cli or testing.
"""
