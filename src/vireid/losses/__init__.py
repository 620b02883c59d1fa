"""Losses, each a small function with its formula in the docstring, and the criteria combining them."""
