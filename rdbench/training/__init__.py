"""Training learned codecs: per-family recipes, a resumable loop, the losses of each paper.

    from rdbench.training import TrainConfig, train
    train(TrainConfig(codec="bmshj2018-factorized", dataset="folder:photos", output_dir="run", steps=1000))

The Luigi front end is ``pipelines.training.TrainCodec``.
"""
from rdbench.training.loop import (
    Recipe,
    TrainConfig,
    TrainingError,
    default_run_name,
    get_recipe,
    read_progress,
    recipes,
    register_recipe,
    train,
)

__all__ = [
    "Recipe",
    "TrainConfig",
    "TrainingError",
    "default_run_name",
    "get_recipe",
    "read_progress",
    "recipes",
    "register_recipe",
    "train",
]
