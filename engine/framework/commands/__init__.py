"""One module per `engine` sub-command; each exposes `add_parser(subparsers)` and `run(args) -> int`.

Command modules import heavy dependencies (TensorFlow, trainer/) inside `run` only, so that
`engine --help` and `engine run` start fast and never load TensorFlow.
"""

COMMANDS: tuple[str, ...] = ("run", "listen", "view", "stage", "pose", "prepare", "train", "evaluate", "export", "keys", "bridge")
