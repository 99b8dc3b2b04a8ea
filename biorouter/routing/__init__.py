"""Routing: from a request's signals to a Decision, as pure functions over loaded configuration.

- :mod:`~biorouter.routing.decision`: the Decision and Signals models (what was decided and why).
- :mod:`~biorouter.routing.policy`: ``decide()``, the pure routing function.
- :mod:`~biorouter.routing.profiles`: profile YAML (routes, governance rules, budgets, strategies).
- :mod:`~biorouter.routing.catalogue`: the deployment groups read from the LiteLLM config.
- :mod:`~biorouter.routing.complexity`: the complexity tier estimate.
- :mod:`~biorouter.routing.strategies` and :mod:`~biorouter.routing.answer_checks`: multi-call strategy plans
  (fallback, vote, judge) and the checks their answers pass.

May import: the top-level helpers (errors, files, offline, settings, yamlfile, metrics) and
:mod:`biorouter.governance`. Never classify, costs, hardware, serving, proxy, workers or cli.
Nothing here loads a model or opens a connection.
"""
