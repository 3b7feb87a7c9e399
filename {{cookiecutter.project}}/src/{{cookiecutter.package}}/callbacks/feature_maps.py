"""What layers of the backbone respond to: activations of a few fixed validation images (opt-in)."""

from __future__ import annotations

import difflib
from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer
from torch.utils.hooks import RemovableHandle

from ..data.transforms import unnormalise
from ..errors import ConfigurationError
from .figures import RunFilesCallback


def last_stage(model: torch.nn.Module) -> str:
    """The name of the backbone's last feature stage (timm's feature_info), e.g. "layer4" or "stages.3"."""
    info = getattr(model, "feature_info", None)
    if info:
        return info[-1]["module"]
    raise ConfigurationError(
        f"{type(model).__name__} does not say which module is its last stage (no timm feature_info): "
        "name the layers, e.g. callbacks.feature_maps.layers=[layer4]."
    )


class FeatureMaps(RunFilesCallback):
    """`feature_maps_<layer>.png` for each of `layers` (names in the timm model, as in
    `model.named_modules()`; default: its last stage): each of the first `num_images` validation
    images beside the `channels` most active channels of that layer's output, after the last validation.

    Forward hooks are attached for the first validation batch of each epoch only (the forward pass
    the run makes anyway) and removed right after it.
    """

    def __init__(
        self, dirpath: str, layers: list[str] | None = None, num_images: int = 4, channels: int = 8
    ) -> None:
        super().__init__(dirpath)
        self.layers = list(layers) if layers else None
        self.num_images = int(num_images)
        self.channels = int(channels)
        self.handles: list[RemovableHandle] = []
        self.captured: dict[str, torch.Tensor] = {}
        self.inputs: torch.Tensor | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        model = pl_module.model
        self.layers = self.layers or [last_stage(model)]
        modules = dict(model.named_modules())
        for layer in self.layers:
            if layer not in modules:
                close = difflib.get_close_matches(layer, [name for name in modules if name], n=3)
                raise ConfigurationError(
                    f"callbacks.feature_maps.layers: {pl_module.hparams.backbone} has no layer {layer!r}"
                    + (f"; did you mean {', '.join(close)}?" if close else ".")
                    + " The names are those of model.named_modules() of the timm model."
                )

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if trainer.sanity_checking or batch_idx != 0 or not trainer.is_global_zero:
            return
        self.inputs = batch[0][: self.num_images].detach().cpu()
        modules = dict(pl_module.model.named_modules())
        for layer in self.layers:
            self.handles.append(modules[layer].register_forward_hook(self._capture(layer)))

    def _capture(self, layer: str):
        def hook(module: torch.nn.Module, inputs: Any, output: Any) -> None:
            output = output[0] if isinstance(output, (tuple, list)) else output
            if isinstance(output, torch.Tensor) and output.dim() == 3:  # ViT tokens (N, L, C): as a 1-row map
                output = output.transpose(1, 2).unsqueeze(2)
            if isinstance(output, torch.Tensor) and output.dim() == 4:
                self.captured[layer] = output[: self.num_images].detach().float().cpu()

        return hook

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self.remove_hooks()

    def remove_hooks(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self.remove_hooks()

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.remove_hooks()
        if not self.writes_files(trainer) or not self.captured:
            return
        from .drawing import feature_maps_figure

        inputs = unnormalise(self.inputs, getattr(pl_module, "preprocessing", None))
        for layer, activations in self.captured.items():
            name = "feature_maps_" + layer.replace(".", "_")
            figure = feature_maps_figure(activations.numpy(), layer, self.channels, inputs)
            self.save_figure(trainer, figure, name, f"feature maps {layer}")
