"""Unreadable training images: skip-or-fail policy and the ``data/skipped_images`` metric.

The mapper (:class:`~boneage_d2.data.mapper.BoneAgeDatasetMapper`) runs in DataLoader worker
processes, where no event storage exists. So a mapper that skips an image returns None
(Detectron2's ``MapDataset`` then maps another index) and writes how many images it skipped into
the next dict it returns, under :data:`SKIPPED_IMAGES_KEY`. In the trainer's process,
:func:`with_skipped_image_metric` wraps the training loader: it takes that key out of every batch
and puts the running total into the event storage, so the count reaches the metrics whatever
``DATALOADER.NUM_WORKERS`` is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from detectron2.utils.events import get_event_storage

from ..io.radiograph import ImageReadError

__all__ = [
    "MAX_CONSECUTIVE_BAD_IMAGES",
    "ON_BAD_IMAGE_CHOICES",
    "SKIPPED_IMAGES_KEY",
    "SKIPPED_IMAGES_METRIC",
    "BadImagePolicy",
    "SkippedImageMetric",
    "with_skipped_image_metric",
]

logger = logging.getLogger(__name__)

ON_BAD_IMAGE_CHOICES = ("skip", "fail")  # values of cfg.BONEAGE.DATA.ON_BAD_IMAGE
SKIPPED_IMAGES_KEY = "skipped_images"  # dataset-dict key: images skipped before this one
SKIPPED_IMAGES_METRIC = "data/skipped_images"  # event-storage scalar: running total
# More bad images than this in a row means a wrong image folder, not a few bad files: stop.
MAX_CONSECUTIVE_BAD_IMAGES = 100


class BadImagePolicy:
    """What the mapper does with an image that ``read_radiograph`` cannot read.

    ``on_bad_image="skip"``: log a warning naming the file and the reason (once per file and
    process), count it, and let the caller return None; :meth:`take_skipped` hands the count to
    the next good dict. ``"fail"``: raise ``ImageReadError`` naming the file. Either way, after
    :data:`MAX_CONSECUTIVE_BAD_IMAGES` bad images in a row it raises.
    """

    def __init__(self, on_bad_image: str = "skip"):
        if on_bad_image not in ON_BAD_IMAGE_CHOICES:
            raise ValueError(
                f"BONEAGE.DATA.ON_BAD_IMAGE={on_bad_image!r}; expected one of "
                f"{list(ON_BAD_IMAGE_CHOICES)}"
            )
        self.on_bad_image = on_bad_image
        self._skipped = 0  # since the last good image
        self._warned: set[str] = set()

    def handle(self, file_name: str, error: ImageReadError) -> None:
        """Record one unreadable image (raise in "fail" mode or after too many in a row)."""
        if self.on_bad_image == "fail":
            raise ImageReadError(
                f"{error} (BONEAGE.DATA.ON_BAD_IMAGE='fail'; 'skip' trains on without it)"
            ) from error
        self._skipped += 1
        if self._skipped >= MAX_CONSECUTIVE_BAD_IMAGES:
            raise ImageReadError(
                f"{self._skipped} training images in a row could not be read, the last one: "
                f"{error}. Is the image folder of the dataset json right?"
            ) from error
        if file_name not in self._warned:
            self._warned.add(file_name)
            logger.warning(f"Skipping unreadable training image: {error}")
        else:
            logger.debug(f"Skipping training image {file_name} again")

    def take_skipped(self) -> int:
        """Images skipped since the last call (the count travels with the next good image)."""
        n, self._skipped = self._skipped, 0
        return n


class SkippedImageMetric:
    """Wraps a training data loader: pops :data:`SKIPPED_IMAGES_KEY` from every dict of every
    batch and puts the running total (this process's, since the loader started) into the event
    storage as :data:`SKIPPED_IMAGES_METRIC` at every iteration, unsmoothed."""

    def __init__(self, data_loader: Iterable[list[dict]]):
        self.data_loader = data_loader
        self.total = 0

    def __iter__(self) -> Iterator[list[dict]]:
        for batch in self.data_loader:
            self.total += sum(int(d.pop(SKIPPED_IMAGES_KEY, 0)) for d in batch)
            try:
                storage = get_event_storage()
            except AssertionError:  # iterated outside a trainer: keep the total only
                storage = None
            if storage is not None:
                storage.put_scalar(SKIPPED_IMAGES_METRIC, self.total, smoothing_hint=False)
            yield batch


def with_skipped_image_metric(data_loader: Iterable[list[dict]]) -> SkippedImageMetric:
    """``data_loader`` wrapped in :class:`SkippedImageMetric` (unchanged if it already is)."""
    if isinstance(data_loader, SkippedImageMetric):
        return data_loader
    return SkippedImageMetric(data_loader)
