"""Data: from files to normalized batches on the training device, one concern per module.

- ``dataset``: the in-memory data set (``InMemoryDataset``) and its sizes; the streamed one's contract is
  ``zoo_core.kit.contracts.StreamedDataset``.
- ``decode``: the one decoder, an image file's bytes to the pixels a viewer sees (every reader uses it).
- ``ops``: batched kernels on the device: the geometric rules (``resize_region``, ``center_crop``,
  ``resized_crop``), flips, padded crops, the one normalization (``Normalize``) and the one cache of
  small per-device constants (``device_constant``).
- ``order``: every seed (``mix``), the shard of each rank, the sampler (``Order``).
- ``transform``: what is done to a batch (``Augment``, ``BatchTransform``).
- ``plan``: which feed, where crops are cut and where batches are normalized (``plan_feed``,
  ``crops_in_workers``, ``normalizes_in_workers``); ``memory``: whether a data set fits in RAM.
- ``feeds``: the loaders (held on the device, or through DataLoader workers); ``shard_feed``: the loader of
  sharded sets (tar shards, read shard by shard); ``shard_plan``: which shards each rank and worker reads;
  ``workers``: the DataLoader side (crops in the workers, ``Collate``); ``batch_buffers``: the shared-memory
  batch buffers workers reuse once the main process lets go of them.
- ``loader``: ``make_loader``, which composes plan, feed, order and transform.
- ``stats``: channel statistics; ``root``, ``download``, ``export``, ``export_shards``, ``safe_pickle``:
  finding, fetching, writing (as ImageFolder, shards, parquet) and safely reading data files.

Importing this package imports nothing heavy; torch comes with the modules that need it.
"""
