"""A user's own model and training loop, registered with regsweep (see train.py)."""
