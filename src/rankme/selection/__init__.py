"""Choosing without labels: candidates (runs, checkpoints, encoders, layers) scored and cached, choice rules
(argmax, the paper's plateau rule, other label-free scores), warnings, and label oracles to check a pick."""
