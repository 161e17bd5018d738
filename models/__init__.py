"""Models (host side): recommender architectures (SASRec-style, two-tower, ranker), content models,
training with early stopping / resume / warm start / DDP, checkpoints, baselines and the offline
full-ranking evaluation protocol."""
