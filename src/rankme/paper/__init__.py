"""The paper's experiment at this machine's scale: reference SSL methods in plain torch (SimCLR, VICReg, DINO:
:mod:`~rankme.paper.models`, :mod:`~rankme.paper.losses`, :mod:`~rankme.paper.augment`, offline data in
:mod:`~rankme.paper.data`), training and scoring runs (:mod:`~rankme.paper.train`), and the reproduction sweeps
(:mod:`~rankme.paper.protocols`, :mod:`~rankme.paper.runner`) with their tables and report.

RankMe is computed on the projector output ("embedding"); probes use the backbone output ("representation").
Everything here but :mod:`~rankme.paper.config` and :mod:`~rankme.paper.protocols` needs torch (extra ``demo``).
"""
