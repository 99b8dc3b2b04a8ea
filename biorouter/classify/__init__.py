"""Task classification: utterances in, a task label with a confidence out.

- :mod:`~biorouter.classify.classifier`: ``TaskClassifier``, the semantic-router index with a lexical fallback.
- :mod:`~biorouter.classify.encoders`, :mod:`~biorouter.classify.onnx_encoder`,
  :mod:`~biorouter.classify.onnx_export`, :mod:`~biorouter.classify.embedding`: sentence encoders (torch or
  ONNX) and the embedding cache.
- :mod:`~biorouter.classify.lexical`, :mod:`~biorouter.classify.softmax`: the cheap signals and calibration.
- :mod:`~biorouter.classify.utterances`: reading the ``utterances/*.txt`` examples.
- :mod:`~biorouter.classify.tuning`, :mod:`~biorouter.classify.evaluation`: thresholds tuned on labelled
  examples, and the accuracy report.

May import: the top-level helpers, :mod:`biorouter.governance` and :mod:`biorouter.routing` (tuning replays
``decide()``). Never costs, hardware, serving, proxy, workers or cli. Encoders load on first use only.
"""
