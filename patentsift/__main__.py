"""`python -m patentsift`: the same as the `patentsift` command."""

from patentsift.cli import main

main()
