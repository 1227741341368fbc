"""The floating-point types a model computes in, named once for every place that offers them.

A dense layer's ``dtype``, the batch controller's ``dtype`` (its pixels),
``[model] dtype`` in ``nnsim train``'s config and the example script's
``--dtype`` all choose from `DTYPES`; a checkpoint's tensor dtypes (the
safetensors codes in ``nnsim.checkpoint.tensorfile``) are a different idea.
"""

DTYPES: tuple[str, ...] = ("float32", "float64")
"""numpy dtype names a network may hold its weights and do its math in."""
