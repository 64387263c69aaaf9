"""Small reference SSL pieces in plain torch: encoders with a backbone and a projector, losses, augmentations.

RankMe is computed on the projector output ("embedding"); probes use the backbone output ("representation").
"""

from rankme.ssl.augment import augment_digits
from rankme.ssl.losses import dino_loss, info_nce_loss, vicreg_loss
from rankme.ssl.models import DinoModel, SSLModel, digits_mlp, digits_model, mnist1d_model

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
