"""Encoders to score on the user's data (``hf:``, ``st:``, ``timm:``, ``torch:`` and checkpoints into a
factory), layer discovery, preprocessing, and batch extraction into accumulators."""
