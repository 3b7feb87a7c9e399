"""Find a learning rate (and a batch size) for train.py: `python tune.py <your train.py overrides>`."""

import hydra
from omegaconf import DictConfig

from {{ cookiecutter.package }}.hydra_compat import HYDRA_MAIN
from {{ cookiecutter.package }}.run.hydra_backports import apply_hydra_backports

apply_hydra_backports()  # before Hydra parses: Python 3.14, a faster --help and tab completion on hydra 1.3


@hydra.main(**HYDRA_MAIN, config_path="configs", config_name="tune")
def main(config: DictConfig) -> None:
    # Imported here so that `--help` and config errors answer without loading torch. Errors reach
    # the user as one line through the run guard in configs/hydra/default.yaml.
    from {{ cookiecutter.package }}.tuning import tune

    tune(config)


if __name__ == "__main__":
    main()
