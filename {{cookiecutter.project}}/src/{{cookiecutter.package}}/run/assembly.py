"""The data module and the model a training run (or tune.py's finders) starts from, from the config."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from ..data import ClassificationDataModule
from ..errors import instantiate_checked
from ..models import ImageClassifier
from ..models.network import check_backbone_name


def build_datamodule_and_model(config: DictConfig) -> tuple[ClassificationDataModule, ImageClassifier]:
    """Instantiate the data module, the model for its classes, and the preprocessing both use.

    One direction, timm's: the built model decides its preprocessing (its pretrained config, with the
    data.* overrides and, from scratch, the images' typical size); the data follows. The model keeps
    it for its checkpoints, so eval and export need no training config.
    """
    check_backbone_name(config.model.backbone)  # before anything slow, and before timm's own errors
    datamodule: ClassificationDataModule = instantiate_checked(config.data, seed=config.seed)
    # Computed once from the training split and saved with the model: eval and a resume use these numbers.
    auto_weights = config.model.get("class_weights") == "auto"
    model: ImageClassifier = instantiate_checked(
        config.model,
        **({"class_weights": datamodule.balanced_class_weights()} if auto_weights else {}),
        class_names=datamodule.class_names,
        optimizer=OmegaConf.to_container(config.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(config.scheduler, resolve=True),
        finetune=OmegaConf.to_container(config.finetune, resolve=True) if "finetune" in config else None,
        _convert_="all",
    )
    datamodule.use_preprocessing(
        model.resolve_preprocessing(datamodule.preprocessing_overrides, datamodule.typical_image_side)
    )
    return datamodule, model
