import sys

from pap.main import main

sys.exit(main())
