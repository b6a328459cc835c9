"""`python tui.py --model DIR`: the jaxrap terminal studio (the same as `jaxrap tui`)."""

from jaxrap.cli.tui import main

if __name__ == "__main__":
    raise SystemExit(main())
