"""Set completion for bench/learning.py: groups of memories that share no content word, used together three times;
afterwards, does a query that matches one member bring the others into the top 5? And do queries about
unrelated notes keep their top 5?"""

import itertools
import random
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from mcp import Client
from tests.helpers import structured

from bench.filler import notes
from hebbian_memory.clock import ManualClock
from hebbian_memory.config import Settings, load_settings
from hebbian_memory.embedding.embedder import Embedder
from hebbian_memory.retrieval.text import terms
from hebbian_memory.transport.app import build_server

ROUNDS = 3
FILLERS = 150
FILLER_PROBES = 20
TOP = 5
STEP = timedelta(seconds=30)  # the simulated time between two calls
BREAK = timedelta(minutes=10)  # and between two MCP sessions


@dataclass(frozen=True)
class Member:
    text: str  # what is stored
    aim: str  # the query the assistant sends while working with it
    probe: str  # the test's query afterwards: matches this member only, in other words than the stored text


def _g(*members: tuple[str, str, str]) -> tuple[Member, ...]:
    return tuple(Member(*m) for m in members)


GROUPS: tuple[tuple[Member, ...], ...] = (
    _g(
        ("The staging host is kestrel-04.internal", "staging host name", "which machine hosts staging?"),
        ("Credentials for it live in the 1Password vault Ops-Shared", "where are the credentials kept",
         "which vault holds the logins"),
        ("Deploy checklist: run migrations, warm caches, flip the flag", "deploy checklist steps",
         "what to do when I deploy: migrations and caches"),
    ),
    _g(
        ("Mum's birthday dinner is booked at Osteria Lucca for the 14th", "mum birthday dinner booking",
         "which restaurant for mum's birthday"),
        ("The gift is a first-edition Agatha Christie, hidden in the hallway closet", "where is the gift hidden",
         "the Agatha Christie present"),
        ("Aunt Priya arrives by train from Leeds that afternoon", "when does aunt Priya arrive",
         "Priya's journey from Leeds"),
        ("Keep the surprise quiet around Dad, he cannot keep secrets", "keep the surprise from dad",
         "who must not hear about the surprise"),
    ),
    _g(
        ("The Corolla's next service is due at 90,000 km", "Corolla service due",
         "when does the Corolla need servicing"),
        ("Winter tyres are stored at Hakan's garage on Birch Road", "where are the winter tyres",
         "Hakan on Birch Road storing tyres"),
        ("Insurance renews in March with Northwind Mutual, policy NW-4471", "insurance renewal Northwind",
         "my Northwind Mutual policy number"),
        ("The spare key hangs inside the pantry door", "where is the spare key", "spare key location"),
    ),
    _g(
        ("The research grant deadline is 30 September, 5 pm Brussels time", "grant deadline",
         "when is the research grant due"),
        ("Dr. Okafor agreed to write a support letter", "who writes the support letter", "Okafor's letter"),
        ("Budget spreadsheet lives in the shared drive under Finance/2027", "where is the budget spreadsheet",
         "the budget sheet on the shared drive"),
        ("Submission portal login uses my university email", "portal login", "which email address for the portal"),
    ),
    _g(
        ("Movers from Swift Van Lines come Saturday at 8", "when do the movers come", "Swift Van Lines appointment"),
        ("The new flat's lease starts on the first of November", "lease start date", "when does my lease begin"),
        ("Electricity account must be transferred, call Octopus Energy", "transfer the electricity account",
         "Octopus Energy call"),
        ("Boxes of books go to the storage unit at Eastgate, unit 112", "where do the book boxes go",
         "Eastgate storage unit number"),
        ("The landlord, Mr. Varga, wants the keys returned to the letterbox", "return keys to landlord",
         "what Mr. Varga wants done with the keys"),
    ),
    _g(
        ("Biscuit gets half a tablet of Apoquel each morning", "Biscuit's medication", "Apoquel dose"),
        ("The vet is Dr. Lindqvist at Riverside Animal Clinic", "who is the vet", "Riverside Animal Clinic doctor"),
        ("Dog walker Tomás comes Tuesdays and Thursdays at noon", "dog walker schedule",
         "when does Tomás walk the dog"),
    ),
    _g(
        ("Episode 42 guest is the climatologist Hannah Ruiz", "episode 42 guest", "Hannah Ruiz the climatologist"),
        ("Recording happens over SquadCast on Wednesday evening", "how do we record", "SquadCast recording day"),
        ("Audio editing is outsourced to Milo, invoice monthly", "who edits the audio", "Milo's editing invoice"),
        ("Show notes template sits in Notion under Publishing", "show notes template", "Notion publishing template"),
    ),
    _g(
        ("If the billing pod crashloops, inspect the Redis connection pool first", "billing pod crashloop",
         "Redis pool when billing crashes"),
        ("Pager escalation goes to Ravi, then the platform lead", "pager escalation", "who to escalate to after Ravi"),
        ("Grafana dashboard checkout-latency shows the p99 spike", "which Grafana dashboard",
         "where to see the p99 latency"),
        ("Rollback command: helm rollback payments 0", "rollback command", "how to helm rollback"),
    ),
    _g(
        ("Jana and Felix's wedding is at Château Belvoir, 21 June", "Jana and Felix wedding",
         "where is the Belvoir wedding"),
        ("Dress code is black tie, bring the navy suit", "dress code", "which suit to bring, black tie"),
        ("I'm giving a toast after the main course", "when is my toast", "my toast at the meal"),
        ("Hotel shuttle leaves from Place Bellecour at 3 pm", "hotel shuttle", "shuttle from Bellecour time"),
    ),
    _g(
        ("Self-assessment tax return due 31 January", "tax return deadline", "when is self-assessment due"),
        ("Accountant is Gemma Holt, she needs the P60 and receipts", "what does the accountant need",
         "Gemma Holt wants the P60"),
        ("Rental income statements are in the blue folder", "rental income statements", "where is the rental income"),
        ("HMRC gateway ID is written in the notebook by the desk", "HMRC gateway ID", "where is my gateway ID noted"),
    ),
    _g(
        ("Long run this Sunday: 28 km along the canal", "Sunday long run", "how far is the canal run"),
        ("Physio said to ice the left calf after sessions", "physio advice", "icing my calf"),
        ("Race bib collection is Friday at the Expo hall", "bib collection", "when to collect the race bib"),
        ("Energy gels: take one every 40 minutes", "energy gels", "how often to take a gel"),
    ),
    _g(
        ("Japanese lessons with Sensei Mori on Mondays via Zoom", "Japanese lessons", "Sensei Mori Zoom class"),
        ("Anki deck has 1,200 kanji cards, review daily", "Anki kanji deck", "how many kanji cards in Anki"),
        ("JLPT N3 exam registration closes 15 August", "JLPT registration", "when does N3 registration close"),
    ),
    _g(
        ("Book club picked 'The Overstory' for next month", "book club pick", "next month's book club novel"),
        ("Hosting rotates; it's Clara's living room in October", "who hosts in October", "Clara hosting"),
        ("Bring a dessert, someone is allergic to peanuts", "what to bring", "peanut allergy dessert"),
    ),
    _g(
        ("Tomato seedlings go into the greenhouse after the last frost", "tomato seedlings",
         "when to move tomatoes to the greenhouse"),
        ("Rain barrel tap is behind the shed, leaks if overtightened", "rain barrel tap", "the leaky barrel tap"),
        ("Compost needs turning every fortnight", "compost turning", "how often to turn compost"),
        ("Neighbour Ingrid lends her hedge trimmer", "hedge trimmer", "borrow Ingrid's trimmer"),
    ),
    _g(
        ("Work laptop's disk encryption recovery key is with IT, ticket 55120", "disk encryption recovery key",
         "laptop recovery key ticket"),
        ("The VPN client is WireGuard with the profile eu-west", "VPN client profile", "WireGuard profile name"),
        ("Git commits must be signed with the YubiKey", "signing git commits", "YubiKey commit signing"),
        ("Docker Desktop needs 8 GB of memory allocated", "Docker Desktop memory", "how much RAM for Docker"),
    ),
    _g(
        ("PyCon talk slot is Thursday 11:30 in Hall B", "PyCon talk slot", "when is my PyCon talk"),
        ("Flight KL1234 leaves Amsterdam at 7:05", "flight KL1234", "what time does my Amsterdam flight leave"),
        ("Hotel Ibis Centrale booking reference 77Q2X", "Ibis booking reference", "Ibis Centrale reference"),
        ("Slides are exported to PDF on the USB stick as backup", "slides backup", "PDF of the slides on USB"),
    ),
    _g(
        ("Leo's school pickup is 3:15, gate C", "Leo school pickup", "which gate for Leo's pickup"),
        ("His teacher Ms. Abara prefers notes via the ClassDojo app", "how to contact Ms. Abara",
         "ClassDojo messages to the teacher"),
        ("Swimming kit needed every Wednesday", "swimming kit day", "when does he need swimming kit"),
        ("The allergy form must be signed before the trip to the zoo", "allergy form", "zoo trip form to sign"),
    ),
    _g(
        ("Postgres upgrade from 13 to 16 is scheduled for the weekend of 9 March", "Postgres upgrade date",
         "when is the Postgres 16 upgrade"),
        ("Logical replication slot is named mig_slot_v16", "replication slot name", "logical replication slot"),
        ("Downtime budget agreed with sales: 20 minutes", "downtime budget", "how much downtime did sales agree"),
        ("Ticket tracking it is OPS-3391", "tracking ticket", "OPS-3391 ticket"),
    ),
    _g(
        ("Sourdough starter is fed at 9 pm with rye flour", "feeding the sourdough starter",
         "rye flour for the starter"),
        ("Farmers market stall fee is 35 euros per Saturday", "market stall fee", "farmers market cost"),
        ("Labels printed by Stickerhaus, reorder at 200 left", "label printer", "Stickerhaus label reorder"),
        ("Card reader is a SumUp linked to the business account", "card reader", "SumUp reader account"),
        ("Allergen sheet must list sesame and walnuts", "allergen sheet", "sesame and walnut warning"),
    ),
    _g(
        ("Choir concert is at St. Anne's on the 3rd of December", "choir concert date", "St. Anne's concert"),
        ("My part is second alto, bars 40 to 72 still shaky", "my choir part", "which bars to practise as alto"),
        ("Rehearsal tracks are on the Dropbox link Marguerite sent", "rehearsal tracks",
         "Marguerite's Dropbox recordings"),
    ),
)  # fmt: skip


def check_groups() -> list[str]:
    """Problems with the groups: members of a group that share an index term, probes that match another member."""
    problems: list[str] = []
    for n, group in enumerate(GROUPS):
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if shared := set(terms(a.text)) & set(terms(b.text)):
                    problems.append(f"group {n}: {a.text!r} and {b.text!r} share {shared}")
            for b in group:
                if b is not a and (shared := set(terms(a.probe)) & set(terms(b.text))):
                    problems.append(f"group {n}: probe {a.probe!r} matches {b.text!r} on {shared}")
    return problems


def _order(fillers: Sequence[str]) -> list[tuple[int, int, str]]:
    """Members and fillers shuffled, no two members of one group next to each other (consecutive memories of a
    session are linked by time, which would complete the sets without any learning): (group, member, text),
    group -1 for a filler."""
    items = [(g, m, member.text) for g, group in enumerate(GROUPS) for m, member in enumerate(group)]
    items += [(-1, i, text) for i, text in enumerate(fillers)]
    rng = random.Random(3)
    while True:
        rng.shuffle(items)
        if all(a[0] < 0 or a[0] != b[0] for a, b in itertools.pairwise(items)):
            return items


async def _top(client: Client, query: str) -> list[int]:
    hits = structured(await client.call_tool("recall", {"query": query, "k": 10, "min_relevance": 0}))["hits"]
    return [h["id"] for h in hits]


async def _probe(
    settings: Settings, embedder: Embedder, clock: ManualClock, ids: list[list[int]], questions: list[str]
) -> dict[str, Any]:
    """Every filler question, then every member's probe, in one session: the top 10 ids of each."""
    async with Client(build_server(settings, clock=clock, embedder=embedder)) as client:
        fillers = [await _top(client, q) for q in questions]
        members = [[await _top(client, m.probe) for m in group] for group in GROUPS]
    clock.advance(BREAK)
    return {"fillers": fillers, "members": members, "ids": ids}


async def _learn(settings: Settings, embedder: Embedder, clock: ManualClock, ids: list[list[int]], use: bool) -> int:
    """ROUNDS rounds; in each, one session per group recalls each member's aim query and then reports them all
    used on a last recall (the first aim again). Returns how many aim queries had their member in the top 10."""
    found = 0
    for _ in range(ROUNDS):
        for group, members in zip(GROUPS, ids, strict=True):
            async with Client(build_server(settings, clock=clock, embedder=embedder)) as client:
                for member, memory in zip(group, members, strict=True):
                    clock.advance(STEP)
                    found += memory in await _top(client, member.aim)
                clock.advance(STEP)
                arguments: dict[str, Any] = {"query": group[0].aim, "k": 10, "min_relevance": 0}
                structured(await client.call_tool("recall", arguments | ({"used": members} if use else {})))
            clock.advance(BREAK)
    return found


def _score(probed: dict[str, Any]) -> dict[str, Any]:
    ids: list[list[int]] = probed["ids"]
    probes = groups = pairs = own = 0
    pair_total = 0
    for members, tops in zip(ids, probed["members"], strict=True):
        passed = 0
        for memory, top in zip(members, tops, strict=True):
            others = [m for m in members if m != memory]
            found = sum(m in top[:TOP] for m in others)
            pairs += found
            pair_total += len(others)
            passed += found == len(others)
            own += memory in top[:TOP]
        probes += passed
        groups += passed == len(members)
    n_probes = sum(len(m) for m in ids)
    return {
        "groups_passed": groups / len(ids),
        "probes_passed": probes / n_probes,
        "others_in_top5": pairs / pair_total,
        "probe_finds_its_member": own / n_probes,
    }


async def run(
    data_dir: Path, embedder: Embedder, clock: ManualClock, use: bool, ablation: Mapping[str, object] | None = None
) -> dict[str, Any]:
    """Store, probe a copy (before), learn, probe again (after); rates before and after, and the filler probes
    whose top 5 changed."""
    if problems := check_groups():
        raise ValueError("set-completion groups are not word-disjoint: " + "; ".join(problems))
    fillers = notes(FILLERS)
    base = dict(ablation or {})
    settings = load_settings(env={}, overrides=base | {"data_dir": str(data_dir / "sets"), "log_level": "WARNING"})
    order = _order([text for text, _ in fillers])
    async with Client(build_server(settings, clock=clock, embedder=embedder)) as client:
        memories = [{"content": text} for _, _, text in order]
        stored = structured(await client.call_tool("remember_many", {"memories": memories}))["results"]
    ids = [[0] * len(group) for group in GROUPS]
    filler_ids = [0] * len(fillers)
    for (g, m, _), result in zip(order, stored, strict=True):
        if g < 0:
            filler_ids[m] = result["id"]
        else:
            ids[g][m] = result["id"]
    clock.advance(BREAK)
    # The filler probes: evenly spread over the fillers (the templates come in turn, so over the topics too).
    questions = [fillers[i * len(fillers) // FILLER_PROBES][1] for i in range(FILLER_PROBES)]
    before_dir = shutil.copytree(settings.data_dir, data_dir / "sets-before")
    before_settings = load_settings(env={}, overrides=base | {"data_dir": str(before_dir), "log_level": "WARNING"})
    before = await _probe(before_settings, embedder, ManualClock(clock.now()), ids, questions)
    print("  sets: stored and probed before learning", file=sys.stderr)
    aims_found = await _learn(settings, embedder, clock, ids, use)
    after = await _probe(settings, embedder, clock, ids, questions)
    changed = [a[:TOP] != b[:TOP] for a, b in zip(before["fillers"], after["fillers"], strict=True)]
    changed_set = [set(a[:TOP]) != set(b[:TOP]) for a, b in zip(before["fillers"], after["fillers"], strict=True)]
    return {
        "groups": len(GROUPS),
        "members": sum(len(g) for g in GROUPS),
        "fillers": len(fillers),
        "rounds": ROUNDS,
        "used_sent": use,
        "aims_found_in_top10": aims_found / (ROUNDS * sum(len(g) for g in GROUPS)),
        "before": _score(before),
        "after": _score(after),
        "filler_probes": FILLER_PROBES,
        "filler_top5_changed": sum(changed_set),
        "filler_top5_order_changed": sum(changed),
    }
