"""`python -m wandb_gql.cli`: the same as the `wbgql` command."""

from . import main

main()
