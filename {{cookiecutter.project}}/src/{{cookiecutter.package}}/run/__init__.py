"""The run layer every task (train, eval) goes through: settings, directory, trainer, results, errors.

`task.Run` is one run from start to results.json; `hydra_callback.RunGuard` is the single-run
boundary (refuses a used directory before Hydra writes to it, removes what a failed run left,
turns user errors into one line and exit status 1); `checks` decides what is bad input.
Nothing is imported here, so that Hydra can load the callback without loading torch.
"""
