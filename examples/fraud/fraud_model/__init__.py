"""The fraud classifier example: synthetic card transactions, gradient-boosted trees (sklearn)."""
