"""Costs: what a call costs and who may still spend.

- :mod:`~biorouter.costs.prices`: per-token prices of each deployment group (LiteLLM's map or the config).
- :mod:`~biorouter.costs.budget`: ``BudgetKeeper``, reservations against profile budgets.
- :mod:`~biorouter.costs.ledger`: the spend ledger (in memory or a file), periods and scopes.
- :mod:`~biorouter.costs.ledger_redis`: the same ledger shared through redis between workers.

May import: the top-level helpers, :mod:`biorouter.governance` and :mod:`biorouter.routing`.
Never classify, hardware, serving, proxy, workers or cli.
"""
