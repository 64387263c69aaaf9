"""Stand-ins for a training run, importable by spawned workers (process tests of the sweep runner)."""

from __future__ import annotations

import os
import time
from typing import Any

FAKE = {"rankme": 1.0, "probe_acc": 50.0, "ood_probe_acc": 40.0}


def _log(cfg: Any) -> None:
    path = os.environ.get("RANKME_TEST_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(f"{cfg.key()} {os.getpid()}\n")


def quick_train(cfg: Any) -> dict[str, Any]:
    """Half a second of "training"; records (run, process) in $RANKME_TEST_LOG."""
    _log(cfg)
    time.sleep(0.5)
    return dict(FAKE)


def hang_train(cfg: Any) -> dict[str, Any]:
    """Records the worker, then trains "forever" (until killed)."""
    _log(cfg)
    time.sleep(600)
    return dict(FAKE)
