"""Visualisation: t-SNE embeddings and training curves."""
