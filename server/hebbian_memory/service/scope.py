"""ProjectScope: the projects one caller may use (a team token's, see ``transport.tokens``). The service takes
it on every operation that reads or changes memories; None there means every project (stdio, the CLI, a
server with one shared token). Memories outside the scope act as if they were not stored."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hebbian_memory import inputs
from hebbian_memory.errors import InvalidInputError
from hebbian_memory.storage import Filters, MemoryStore

__all__ = ["ProjectNotAllowedError", "ProjectScope"]


class ProjectNotAllowedError(InvalidInputError):
    """A call named a project its token is not bound to; nothing was read or changed."""

    def __init__(self, project: str, allowed: Sequence[str]) -> None:
        self.project = project
        super().__init__(
            f"This token may not use project {project!r}. It may use: {', '.join(repr(p) for p in allowed)}. "
            "Nothing was read or changed; leave project out to use the token's default project."
        )


@dataclass(frozen=True, slots=True)
class ProjectScope:
    """The projects a caller may read and write, the first its default (at least one)."""

    projects: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.projects:
            raise ValueError("a project scope names at least one project")

    @staticmethod
    def of(projects: Iterable[str] | None) -> "ProjectScope | None":
        """The scope of a call's ``allowed`` argument (None: unrestricted)."""
        return None if projects is None else ProjectScope(tuple(projects))

    def check(self, project: str) -> str:
        """``project`` (validated) if the scope allows it, else ProjectNotAllowedError."""
        name = inputs.project(project)
        if name not in self.projects:
            raise ProjectNotAllowedError(name, self.projects)
        return name

    def within(self, project: str | None) -> tuple[str, ...]:
        """The projects a call looks in: ``project`` (checked), or with None (all_projects) every allowed one."""
        return self.projects if project is None else (self.check(project),)

    def owned(self, store: MemoryStore, ids: Sequence[int]) -> set[int]:
        """Those of ``ids`` stored in one of the scope's projects."""
        found: set[int] = set()
        for project in self.projects:
            if len(found) == len(set(ids)):
                break
            found |= store.matching(ids, Filters(project=project))
        return found

    def foreign(self, store: MemoryStore, ids: Sequence[int]) -> set[int]:
        """Those of ``ids`` the caller must not see: stored in another project (or not stored at all)."""
        return set(ids) - self.owned(store, ids)
