import sys

from rlmu.cli import main

sys.exit(main())
