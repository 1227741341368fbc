"""Config-driven training: ``nnsim train`` and ``nnsim test`` as functions.

``config`` (the typed TOML config and its overrides), ``build`` (the model
from a config), ``runfolder`` (the folder each run writes), ``metrics``
(metrics.csv and TensorBoard; the bars are `nnsim.progress`), ``plots``
(matplotlib figures), ``predictions`` (predictions.csv), ``train`` (train and
resume) and ``evaluate`` (test a checkpoint)::

    from nnsim.train import load_config, train, resume

    result = train(load_config("examples/fashion_mnist/train.toml", flags={"training.epochs": 2}))
    print(result.run_dir, result.metrics[-1]["val_acc"])
"""

from nnsim.train.config import Config, ConfigError, load_config, to_toml
from nnsim.train.train import TrainResult, resume, train

__all__ = ["Config", "ConfigError", "TrainResult", "load_config", "resume", "to_toml", "train"]
