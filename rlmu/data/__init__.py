"""Observation videos and paired data: on-disk format, loader, generator, augmentation, relabelling.

The format and loader live in :mod:`rlmu.data.format` (documented in ``docs/data_format.md``); the
generator in :mod:`rlmu.data.generate`; the ``rlmu data`` command in :mod:`rlmu.data.cli`.
"""

from rlmu.data.format import (
    FORMAT_VERSION,
    PAIRED_FORMAT,
    VIDEO_FORMAT,
    DatasetError,
    PairedDataset,
    VideoDataset,
    load_paired_dataset,
    load_video_dataset,
    save_paired_dataset,
    save_video_dataset,
)

__all__ = [
    "FORMAT_VERSION",
    "PAIRED_FORMAT",
    "VIDEO_FORMAT",
    "DatasetError",
    "PairedDataset",
    "VideoDataset",
    "load_paired_dataset",
    "load_video_dataset",
    "save_paired_dataset",
    "save_video_dataset",
]
