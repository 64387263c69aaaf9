"""THE one path from a source to a result: the scoring options checked once from a constraints table
(``options``, ``constraints``), ``accumulate(source, options) -> state`` and ``finish(state, options) -> result``
(``engine``), the result with its spectra and cache record (``result``), the subsample (``rows``), exact duplicate
rows (``duplicates``), ``score_source``, and the label-only few-label computation (``fewlabel``) that
``rankme select --labels`` and the training monitor's probe share. A layer above io/, below monitor/ and models/
(which build states their own way and finish on this path)."""
