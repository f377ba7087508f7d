"""`python -m flan_jax.train --gin_file=... --gin.KEY=VALUE` == `flan-jax train ...`."""
import sys

from flan_jax.cli import main

if __name__ == "__main__":
    sys.argv[1:1] = ["train"]
    sys.exit(main())
