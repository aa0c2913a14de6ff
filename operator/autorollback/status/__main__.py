import sys

from autorollback.status.shell import main

sys.exit(main())
