"""A scripted client session: the four tools, and learning across two sessions.

Starts the server the way a client config does (over stdio) on a fresh data dir, then:
  session 1: remember a few facts, recall twice (the two trip facts come back together: they are used together),
             associate two memories by hand, forget one;
  session 2: recall the flight, and the hotel comes along through the link learned in session 1.

    uv run python examples/session.py         # from a checkout: uv runs it in the project's environment
"""

import asyncio
import sys
import tempfile
from typing import Any

try:
    from mcp import Client, StdioServerParameters
except ModuleNotFoundError:  # a bare `python examples/session.py`: say how to run it instead of a traceback
    sys.exit(
        "examples/session.py needs the MCP SDK and hebbian-memory in the Python that runs it. From the checkout, "
        "run:  uv run python examples/session.py"
    )


def server(data_dir: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "hebbian_memory", "--data-dir", data_dir])


async def tool(client: Client, name: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    if result.is_error:
        raise RuntimeError(f"{name}: {result.content}")
    return result.structured_content or {}


def show(title: str, hits: list[dict[str, Any]]) -> None:
    print(title)
    for hit in hits:
        how = f"linked via #{hit['via']['memory_id']} ({hit['via']['kind']})" if hit["reason"] == "linked" else "direct"
        print(f"  #{hit['id']} {hit['score']:.2f} {how}: {hit['content']}")


async def main(data_dir: str) -> dict[str, Any]:
    async with Client(server(data_dir)) as first:
        flight = await tool(first, "remember", content="We fly to Lisbon on 12 May at 7:40.", tags=["trip"])
        hotel = await tool(first, "remember", content="Our hotel in Lisbon is in Alfama.", tags=["trip"])
        await tool(first, "remember", content="Ana is allergic to peanuts.", tags=["people"])
        scratch = await tool(first, "remember", content="Scratch note: try the new espresso bar.")
        for _ in range(2):  # used together twice in one session: a Hebbian link forms
            show("session 1, recall 'Lisbon trip':", (await tool(first, "recall", query="Lisbon trip", k=2))["hits"])
        links = await tool(first, "associate", source_id=flight["id"], target_ids=[hotel["id"]], strength=0.6)
        print("associate:", links["links"])
        print("forget:", await tool(first, "forget", ids=[scratch["id"]]))

    async with Client(server(data_dir)) as second:
        hits = (await tool(second, "recall", query="what time is the flight?", k=3))["hits"]
        show("session 2, recall 'what time is the flight?':", hits)
        stats = await tool(second, "stats")
        print("stats:", stats["memories"], "memories,", stats["links"], "links", stats["links_by_kind"])
    return {"flight": flight["id"], "hotel": hotel["id"], "hits": hits, "stats": stats}


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(main(folder))
