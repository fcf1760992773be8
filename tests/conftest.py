"""Shared test set-up."""

import torch

# The suite is thousands of tiny linear-algebra calls on a 2-core machine: one thread avoids
# oversubscription (tiny QRs run ~1000x faster) and makes runs repeatable.
torch.set_num_threads(1)
