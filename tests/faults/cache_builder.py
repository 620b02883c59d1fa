"""Build the decoded-image cache of a SynthVI tree in this process (a second writer for tests/faults).

    python cache_builder.py ROOT CACHE_DIR [HOLD_FILE]

With HOLD_FILE, the build pauses at its fourth image until that file exists (the lock is held meanwhile).
Prints the array path; the cache's log lines say whether this process built it.
"""

from __future__ import annotations

import logging
import os
import sys
import time


def main(root: str, cache_dir: str, hold: str | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    from vireid.data import cache
    from vireid.data.training_sets import load_training_set

    if hold:
        real = cache._DecodeDataset.__getitem__

        def paused(self, i):
            deadline = time.monotonic() + 300  # a guard only: the test creates the file
            while i == 3 and not os.path.exists(hold) and time.monotonic() < deadline:
                time.sleep(0.02)
            return real(self, i)

        cache._DecodeDataset.__getitem__ = paused
    records = load_training_set("sysu", root).records
    print(cache.build_cache(records, root, 32, 16, cache_dir, progress=False).array_path, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
