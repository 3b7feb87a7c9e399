"""Fine-tune timm image classifiers with PyTorch Lightning, configured with Hydra."""
