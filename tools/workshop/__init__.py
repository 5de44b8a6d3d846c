"""The workshop: chapters' exercises cut from final/, graded by the project's own suite.

    python3 -m tools.workshop start N DIR     chapter N's starting point in DIR
    python3 -m tools.workshop check N DIR     grade it: each promise kept or not
    python3 -m tools.workshop doctor          can this machine run the class?
    python3 -m tools.workshop clean           remove what graded code left behind
    python3 -m tools.workshop sheet FILE...   a class's results, from check --json

The exercises are marked in final/ (see tools/exercises.py); the instructor's
guide is docs/workshop/instructor.md.
"""


class WorkshopError(Exception):
    """A problem the user can fix; `hint` says how."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(problem)
        self.problem, self.hint = problem, hint
