"""The paper's experiment at this machine's scale: reference SSL methods in plain torch (SimCLR, VICReg, DINO:
encoders with a backbone and a projector, losses, augmentations, offline data), training and scoring runs, and
the reproduction sweeps with their tables and report.

RankMe is computed on the projector output ("embedding"); probes use the backbone output ("representation").
"""

from rankme.paper.augment import augment_digits
from rankme.paper.losses import dino_loss, info_nce_loss, vicreg_loss
from rankme.paper.models import DinoModel, SSLModel, digits_mlp, digits_model, mnist1d_model

__all__ = [
    "DinoModel",
    "SSLModel",
    "augment_digits",
    "digits_mlp",
    "digits_model",
    "dino_loss",
    "info_nce_loss",
    "mnist1d_model",
    "vicreg_loss",
]
