"""wandb-gql: an async, direct GraphQL client for Weights & Biases."""

__version__ = "0.1.0"
