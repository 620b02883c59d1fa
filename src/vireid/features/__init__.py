"""Feature extraction for evaluation."""
