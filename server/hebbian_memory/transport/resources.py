"""MCP resources (stats, a memory by id, recent memories) and a prompt that primes an assistant to use memory.

Thin adapters like the tools: one node call each. The SDK gives static resources no request context, so they
reach the node through a :class:`NodeRef` that the server's lifespan fills; reads start no session."""

import json
from dataclasses import dataclass
from typing import TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from pydantic import TypeAdapter

from hebbian_memory.errors import HebbianMemoryError, MemoryNotFoundError
from hebbian_memory.models import MemoryView
from hebbian_memory.sharing.node import Node
from hebbian_memory.sharing.ops import GET, RECENT, STATS, GetArgs, NoArgs, Op, OpArgs, RecentArgs
from hebbian_memory.transport.tools import AppContext

__all__ = ["PRIMER", "RECENT_COUNT", "NodeRef", "register_resources"]

T = TypeVar("T")
A = TypeVar("A", bound=OpArgs)
RECENT_COUNT = 20
_VIEWS = TypeAdapter(list[MemoryView])

PRIMER = """\
You have a long-term memory (the hebbian-memory tools). Use it like this:
- At the start of a task, and whenever the user mentions something from before, call `recall` with a short
  description of what you need{about}. Trust what it returns over guesses; say when memory has nothing.
- When you learn something worth keeping (a preference, a decision and its reason, a fact about a person or
  project, an event with its date), call `remember` with one self-contained sentence, a few tags and, for
  events, `event_time`. Do not store secrets: they are masked anyway.
- Say what helped: on your next `recall` or `remember`, list in `used` the ids of the recalled memories you
  actually relied on, and in `misled` any that were wrong, outdated or beside the point. Memories used come up
  sooner for what they answer; memories used together are linked. Leave out hits you only skimmed.
- When two memories belong together (a cause and its effect, a person and their project), `associate` them:
  from then on one comes along right after the other.
- When the user asks you to forget something, find it with `recall` and `forget` it by id; tell them it is gone.
"""


@dataclass
class NodeRef:
    """The running node, once the lifespan has one."""

    node: Node | None = None


async def _read(ref: NodeRef, op: Op[A, T], args: A) -> T:
    if ref.node is None:
        raise ResourceError("The memory server is still starting. Try again shortly.")
    try:
        return await ref.node.call(op, args)
    except MemoryNotFoundError as e:
        raise ResourceNotFoundError(str(e)) from e
    except HebbianMemoryError as e:
        raise ResourceError(str(e)) from e


def register_resources(server: MCPServer[AppContext], ref: NodeRef, project: str, team: bool = False) -> None:
    """Add the resources and the prompt; ``project`` is the one `memory://recent` shows (the configured one).
    With team tokens only the prompt: a resource read gets no request context, so it cannot know whose token
    asks, and each would show memories or project names of every project."""
    if not team:
        _register_reads(server, ref, project)

    @server.prompt(
        title="Use memory well",
        description="Primes the assistant to recall before answering and remember what is worth keeping.",
    )
    def use_memory(topic: str = "") -> str:
        return PRIMER.format(about=f" (here: {topic})" if topic.strip() else "")


def _register_reads(server: MCPServer[AppContext], ref: NodeRef, project: str) -> None:

    @server.resource(
        "memory://stats",
        title="Memory stats",
        description="Memories and links per tier, links per kind, memories per project, last consolidation.",
        mime_type="application/json",
    )
    async def stats() -> str:
        return (await _read(ref, STATS, NoArgs())).model_dump_json(indent=2)

    @server.resource(
        "memory://recent",
        title="Recent memories",
        description=f"The {RECENT_COUNT} newest memories of the configured project, newest first.",
        mime_type="application/json",
    )
    async def recent() -> str:
        views = await _read(ref, RECENT, RecentArgs(limit=RECENT_COUNT, project=project))
        return _VIEWS.dump_json(views, indent=2).decode()

    @server.resource(
        "memory://memories/{memory_id}",
        title="A memory",
        description="One stored memory by its id (as remember and recall return it).",
        mime_type="application/json",
    )
    async def memory(memory_id: str) -> str:
        if not memory_id.isdigit():
            # Not quoted back: the URI is the caller's text, and may hold anything.
            raise ResourceError("That is not a memory id; ids are positive integers from remember or recall.")
        (view,) = await _read(ref, GET, GetArgs(ids=[int(memory_id)]))
        return json.dumps(view.model_dump(mode="json"), indent=2, ensure_ascii=False)
