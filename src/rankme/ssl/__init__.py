"""Small reference SSL pieces in plain torch: encoders with a backbone and a projector, losses, augmentations.

RankMe is computed on the projector output ("embedding"); probes use the backbone output ("representation").
"""

from rankme.ssl.augment import augment_digits
from rankme.ssl.losses import info_nce_loss, vicreg_loss
from rankme.ssl.models import SSLModel, digits_mlp, digits_model

__all__ = ["SSLModel", "augment_digits", "digits_mlp", "digits_model", "info_nce_loss", "vicreg_loss"]
