"""`python -m sommelier_client`: the `sommelier` command, where the script is not on PATH."""

from sommelier_client.cli import main

main(prog_name="sommelier")
