"""`python -m courier_cli`: the same as the `courier` command."""

from courier_cli.app import main

main()
