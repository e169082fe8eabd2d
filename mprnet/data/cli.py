"""Sub-commands of this area; filled in by its issue."""


def register(subparsers) -> None:
    pass
