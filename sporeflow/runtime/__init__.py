"""The training runtime: Model, callbacks, metrics, checkpoints, datasets (MindSpore's
`mindspore.train` and `mindspore.dataset`). The public names are re-exported by
`sporeflow.train` and `sporeflow.dataset`."""
