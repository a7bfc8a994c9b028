"""Training: the Trainer's loop and the pieces it is made of, one module each.

``config`` (TrainConfig and the recipe), ``trainer`` (the loop), ``checkpoint`` (weights and training state),
``evaluate`` (top-1/top-5 over a loader), ``log`` (progress, metrics.jsonl, TensorBoard), ``stop`` (stop
signals and the ranks' agreement), ``run_lock`` (one writer per run directory), ``periodic_save``
(``--save-every`` snapshots in the background). Importing this
package imports no torch: ``zoo --help`` reads the config module's option lists.
"""
