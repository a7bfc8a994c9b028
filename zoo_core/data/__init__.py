"""Data: in-memory data sets, the data root, downloads, and the on-device batch pipeline.

Importing this package imports nothing heavy; torch comes with the modules that need it.
"""
