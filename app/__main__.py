"""`python -m app …` is the same as the `sw` console script."""

from app.cli import main

main()
