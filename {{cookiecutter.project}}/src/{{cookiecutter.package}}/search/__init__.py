"""Hyperparameter search with Optuna: `space` reads Hydra's sweep grammar as Optuna distributions,
`study` creates or resumes the study, tells it each job's result and writes the summary.

Used by the Optuna sweeper in src/hydra_plugins/, and imported only when a search runs: nothing is
imported here.
"""
