"""Model monitoring: recent predictions against the champion's training baseline (drift, data quality, accuracy)."""
