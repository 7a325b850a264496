"""``python -m shadowguard``: the same command line as the ``shadowguard`` script."""

from shadowguard._cli import main

raise SystemExit(main())
