import sys

from dotrec.cli import main

sys.exit(main())
