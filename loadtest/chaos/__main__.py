import sys

from loadtest.chaos.suite import main

sys.exit(main())
