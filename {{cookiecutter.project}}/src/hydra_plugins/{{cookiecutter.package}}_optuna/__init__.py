"""The project's Hydra plugins: the Optuna sweeper (configs/hydra/sweeper/optuna.yaml)."""
