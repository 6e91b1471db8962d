"""Offline kernel search: measuring candidates against the torch.compile'd reference and keeping winners."""
