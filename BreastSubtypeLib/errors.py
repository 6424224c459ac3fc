"""Errors the user can fix. The CLI turns them into one line on stderr and exit status 2."""


class BadInputError(Exception):
    """Input that cannot be used as given: the message names the problem and the file."""


class TumourSegmentationError(BadInputError):
    """The one-click tumour could not find a bounded, enhancing lesion at the seed."""


class ModelPackageError(BadInputError):
    """A model package is missing, incomplete, or fails its SHA-256 check."""


class BadCasesError(BadInputError):
    """Several cases of a cohort cannot be used: every one is named, each with its own reason.

    The CLI prints one line per case (``lines()``), so a user fixes the whole manifest in one go.
    """

    def __init__(self, problems: dict[str, str], consequence: str = "") -> None:
        self.problems = {case: " ".join(str(why).split()) for case, why in problems.items()}
        self.consequence = consequence
        listing = "; ".join(f"case {case}: {why}" for case, why in self.problems.items())
        super().__init__(f"{len(self.problems)} case(s) cannot be used: {listing}")

    def lines(self) -> list[str]:
        summary = f"{len(self.problems)} case(s) cannot be used" + (
            f"; {self.consequence}" if self.consequence else ""
        )
        return [f"case {case}: {why}" for case, why in self.problems.items()] + [summary + "."]
