"""Data: from files to normalized batches on the training device, one concern per module.

- ``dataset``: the in-memory data set (``InMemoryDataset``) and its sizes; the streamed one's contract is
  ``zoo_core.kit.contracts.StreamedDataset``.
- ``decode``: the one decoder, an image file's bytes to the pixels a viewer sees (every reader uses it).
- ``ops``: batched kernels on the device: the geometric rules (``resize_region``, ``center_crop``,
  ``resized_crop``), flips, padded crops, the one ``normalize``.
- ``order``: every seed (``mix``), the shard of each rank, the sampler (``Order``).
- ``transform``: what is done to a batch (``Augment``, ``BatchTransform``).
- ``plan``: which feed and where crops are cut (``plan_feed``); ``memory``: whether a data set fits in RAM.
- ``feeds``: the loaders (held on the device, or through DataLoader workers); ``workers``: their side.
- ``loader``: ``make_loader``, which composes plan, feed, order and transform.
- ``stats``: channel statistics; ``root``, ``download``, ``export``, ``safe_pickle``: finding, fetching,
  writing and safely reading data files.

Importing this package imports nothing heavy; torch comes with the modules that need it.
"""
