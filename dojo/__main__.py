"""`python -m dojo` is the `kata` command."""

from .cli import main

main()
