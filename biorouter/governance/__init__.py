"""Governance: what may leave the machine. The sensitivity detector, the local-only guard, the request view.

- :mod:`~biorouter.governance.sensitivity`: ``SensitivityDetector``, which composes the layers below with the
  profile's own rules and decides whether a request must stay on local deployments.
- :mod:`~biorouter.governance.guard`: the LiteLLM callback that refuses to send a kept-local request to a
  remote deployment (``biorouter.governance.guard.proxy_guard``).
- :mod:`~biorouter.governance.request_view`: the text of a request as the detector and classifier see it.

The detector's layers, cheapest first:

- :mod:`~biorouter.governance.identifiers`: formatted identifiers stated in a sentence rather than a
  labelled field (card numbers with the Luhn check, IBANs with mod-97, passport, driver's licence, tax and
  bank-account numbers after their cue, phones and addresses tied to a person). Pure regex, microseconds.
- :mod:`~biorouter.governance.national_ids`: national, tax and health-insurance numbers of 26 countries,
  each confirmed by its published check-digit algorithm, after a cue word or in a distinctive written form.
- :mod:`~biorouter.governance.records`: text that reads as a record about one patient (nursing and progress
  notes, discharge summaries, one patient's dated lab rows), sensitive even when no name survives.
  Note-structure cues, no model.
- :mod:`~biorouter.governance.people`: person names in context, from spaCy's small English NER, run only
  on short windows around a personal cue (a relation, a greeting, "my name is", an address or card) and
  only when the cheaper layers found nothing; never on code, VCF or log-shaped text.

What makes the layers cheap on long pastes:

- :mod:`~biorouter.governance.prefilter`: an RE2 screen in front of every built-in pattern (a text it
  rejects cannot match; where it matches, the pattern runs from there), and one RE2 pass for all cue words.
- :mod:`~biorouter.governance.superset` and :mod:`~biorouter.governance.regex_superset`: the screens'
  patterns, written from each pattern's own parse (standard library, or ``regex`` with its properties and
  full case folding) so that they match wherever it does.
- :mod:`~biorouter.governance.cue_index` and :mod:`~biorouter.governance.verdicts`: the cue words every
  identifier rule needs, found once; long texts' verdicts remembered by digest.

Each layer names its own rules (bare names for identifiers, ``person:*``, ``record:*``); a layer that
cannot load or fails yields ``detector:unavailable`` so the request is kept local (fail closed).
Nothing here is imported by ``import biorouter``; the NER model loads on first need or at warm-up.
May import: the top-level helpers (errors, files, offline, settings, yamlfile, metrics) only; the audit log of
decisions lives in :mod:`biorouter.serving.audit` because it reads the routing Decision.
"""
