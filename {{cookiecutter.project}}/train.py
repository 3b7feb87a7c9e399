"""Train an image classifier: `python train.py --help` lists the config groups and their options."""

import hydra
from omegaconf import DictConfig

from {{ cookiecutter.package }}.hydra_compat import HYDRA_MAIN
from {{ cookiecutter.package }}.run.hydra_backports import apply_hydra_backports

apply_hydra_backports()  # before Hydra parses: Python 3.14, a faster --help and tab completion on hydra 1.3


@hydra.main(**HYDRA_MAIN, config_path="configs", config_name="train")
def main(config: DictConfig) -> float | None:
    # Imported here so that `--help` and config errors answer without loading torch. Errors reach
    # the user as one line through the run guard in configs/hydra/default.yaml.
    from {{ cookiecutter.package }}.training import train

    return train(config)["optimized"]["value"]  # what a hyperparameter sweeper optimises


if __name__ == "__main__":
    main()
