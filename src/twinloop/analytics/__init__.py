"""Analytics: anomaly, drift, RUL (independent of each other), thresholds and explanations."""
