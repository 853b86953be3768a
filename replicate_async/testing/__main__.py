"""``python -m replicate_async.testing``: serve a fake Replicate API until interrupted."""

import sys

from ._serve import main

if __name__ == "__main__":
    sys.exit(main())
