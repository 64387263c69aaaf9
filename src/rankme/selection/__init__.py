"""Choosing: candidates (runs, checkpoints, encoders, layers) scored on the one path and cached, the label plan and
checks, choice rules (argmax, the paper's plateau rule), warnings, the recommendation (what to keep, how sure) and
the one result record (``record.Selection``)."""
