"""``python -m hyperplex.common.train ...`` = ``hyperplex train ...`` (for ``torchrun -m``)."""

from hyperplex.common.cli.train import train

if __name__ == "__main__":
    train(prog_name="python -m hyperplex.common.train")
