"""``python -m vireid`` (also what ``torchrun -m vireid`` runs)."""

import sys

from vireid.cli.main import main

sys.exit(main())
