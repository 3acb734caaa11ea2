"""Explicit links: associate (make or strengthen links a caller names) and a memory's links as they are now."""

from collections.abc import Sequence

from hebbian_memory import inputs
from hebbian_memory.errors import InvalidInputError, MemoryNotFoundError
from hebbian_memory.learning import plasticity
from hebbian_memory.learning.graph import pair
from hebbian_memory.models import AssociateResult, Association
from hebbian_memory.service.core import Core
from hebbian_memory.service.scope import ProjectScope
from hebbian_memory.storage import Growth

__all__ = ["Linker"]


class Linker:
    """associate and links."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def associate(
        self,
        source_id: int,
        target_ids: Sequence[int],
        strength: float | None,
        session_id: int | None,
        scope: ProjectScope | None = None,
    ) -> AssociateResult:
        core = self._core
        settings, store, learning = core.settings, core.store, core.learning
        limits = settings.limits
        targets = inputs.ids(target_ids, "target_ids", limits.max_ids)
        (source,) = inputs.ids([source_id], "source_id", 1)
        if not targets:
            raise InvalidInputError("target_ids is empty. Name at least one memory id to link the source to.")
        if source in targets:
            raise InvalidInputError("A memory cannot be linked to itself. Remove source_id from target_ids.")
        weight = inputs.unit_interval(
            settings.associate.default_strength if strength is None else strength, "strength", allow_zero=False
        )
        core.wait_ready()
        with core.lock:
            missing = store.missing([source, *targets])
            if scope is not None:  # another project's memory acts as one not stored
                missing |= scope.foreign(store, [source, *targets])
            if missing:
                raise MemoryNotFoundError(missing)
            now = core.clock.now()
            pairs = [pair(source, target) for target in targets]
            events = [(m, session_id, "linked", now) for m in (source, *targets)]
            rule = plasticity.growth_rule(plasticity.EXPLICIT, settings.plasticity)
            # w <- w + s(1 - w) from the weight decayed to now, in the store's one statement (storage.growth)
            written = store.grow_links([Growth(*p, 0.0, weight) for p in pairs], rule, now, events)
            links = [link for link, _ in written]
            if settings.plasticity.enabled:
                learning.saved(links)
                used = learning.used(session_id, [source, *targets], None, now)
                core.learn([p for p in used if p not in set(pairs)], now)  # those were strengthened just now
        return AssociateResult(
            links=[
                Association(
                    source_id=source,
                    target_id=target,
                    weight=round(link.weight, 6),
                    tier=link.tier,
                    kind="explicit",
                    created=created,
                )
                for target, (link, created) in zip(targets, written, strict=True)
            ]
        )

    def links(self, memory_id: int) -> list[tuple[int, float]]:
        """(neighbour id, weight now) of every stored link of a memory."""
        now = self._core.clock.now()
        return [
            (
                link.target_id if link.source_id == memory_id else link.source_id,
                plasticity.decayed(link.weight, link.tier, now - link.updated_at, self._core.settings.plasticity),
            )
            for link in self._core.store.links_of(memory_id)
        ]
