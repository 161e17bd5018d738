"""The host's part of federated learning: aggregation (FedAvg, DP-FedAvg), privacy accounting and the new bundle."""
