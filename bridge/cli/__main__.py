"""`python -m bridge.cli`: the `legwave` command."""

from bridge.cli import main

raise SystemExit(main())
