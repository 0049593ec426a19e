"""`python -m archivist`: the `archivist` command."""

from archivist.cli import main

if __name__ == "__main__":
    main()
