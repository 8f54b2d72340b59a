"""``python -m cnnbench`` (what ``torchrun -m cnnbench`` runs on every rank): the command line."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="cnnbench")
