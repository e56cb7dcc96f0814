"""The one exception the decision core raises."""


class InvalidPod(ValueError):
    """The object is not a pod the core can read; the message names the offending field."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem
