"""The classifier core shared by the classify stage, `engine evaluate` and the trainer: model contract, features, windows, runtime."""
