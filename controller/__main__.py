"""``python -m controller`` runs the recharge-autoscaler CLI."""

import sys

from controller.cli import main

sys.exit(main())
