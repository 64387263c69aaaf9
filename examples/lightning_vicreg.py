"""VICReg on real digit images with Lightning, monitored by RankMeCallback (a copy-pasteable example).

Run: .venv/bin/python examples/lightning_vicreg.py   (2 epochs, CPU, a few seconds; logs and checkpoints go to a
new temporary folder, printed at the end, so nothing is left in the folder it runs from)
"""

from __future__ import annotations

import tempfile

import lightning as L
import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, TensorDataset

from rankme.integrations.lightning import RankMeCallback
from rankme.monitor import CollapseAlarm
from rankme.paper.augment import augment_digits
from rankme.paper.losses import vicreg_loss
from rankme.paper.models import digits_mlp, digits_model


class LitVICReg(L.LightningModule):
    """VICReg with weights (inv, var, cov); with ``mlp=True`` and var = cov = 0 it collapses on purpose."""

    def __init__(self, inv: float = 25.0, var: float = 25.0, cov: float = 1.0, lr: float = 1e-3,
                 mlp: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = digits_mlp() if mlp else digits_model()  # taps "projector"/"backbone" find model.projector/...

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x = batch[0]
        z1, z2 = self.model(augment_digits(x)), self.model(augment_digits(x))
        loss = vicreg_loss(z1, z2, self.hparams.inv, self.hparams.var, self.hparams.cov)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x = batch[0]
        self.log("val_loss", vicreg_loss(self.model(x), self.model(x)))

    def configure_optimizers(self):  # type: ignore[no-untyped-def]
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def digits_loaders(batch_size: int = 128, probe_size: int = 512, seed: int = 0):  # type: ignore[no-untyped-def]
    """Train / validation / probe loaders over sklearn's digits; the probe set is held out and unlabeled."""
    x, _ = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    probe, val, train = x[perm[:probe_size]], x[perm[probe_size : probe_size + 200]], x[perm[probe_size + 200 :]]
    mk = lambda t, shuffle: DataLoader(TensorDataset(t), batch_size=batch_size, shuffle=shuffle)  # noqa: E731
    return mk(train, True), mk(val, False), mk(probe, False)


if __name__ == "__main__":
    train, val, probe = digits_loaders()
    callback = RankMeCallback(probe, taps=["projector", "backbone"], metrics=["rankme", "stable_rank"],
                              alarm=CollapseAlarm(threshold=2.0), stop_on_collapse=True)
    logs = tempfile.mkdtemp(prefix="lightning_vicreg-")
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", callbacks=[callback], default_root_dir=logs,
                        logger=L.pytorch.loggers.CSVLogger(logs), enable_progress_bar=False)
    trainer.fit(LitVICReg(), train, val)
    print(callback.history)
    print(f"logs and checkpoints: {logs}")
