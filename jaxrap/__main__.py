"""``python -m jaxrap`` runs the command line."""

from jaxrap.cli import main

raise SystemExit(main())
