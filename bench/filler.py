"""Filler notes for the learning benchmark: short everyday notes on varied topics, templated, not from LoCoMo,
each with a question about it (for the probes that must not change when unrelated memories are learned)."""

import random
import re

_SLOTS: dict[str, tuple[str, ...]] = {
    "name": (
        "Ansel",
        "Birgit",
        "Cosmo",
        "Dagny",
        "Eero",
        "Fenna",
        "Gideon",
        "Hester",
        "Ilse",
        "Jorun",
        "Kasimir",
        "Linnea",
        "Magnus",
        "Nilufar",
        "Oskar",
        "Petra",
        "Rasmus",
        "Saskia",
        "Tobin",
        "Ulla",
        "Viggo",
        "Wendell",
        "Ximena",
        "Yusuf",
        "Zofia",
    ),
    "appliance": ("dishwasher", "washing machine", "tumble dryer", "fridge", "oven", "boiler", "microwave", "kettle"),
    "room": ("kitchen", "utility room", "basement", "hallway", "loft", "garage"),
    "noise": ("rattling", "grinding", "clicking", "humming", "squeaking", "thumping"),
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "dish": ("lentil soup", "mushroom risotto", "fish pie", "chickpea curry", "lemon tart", "banana bread", "paella"),
    "spice": ("smoked paprika", "cumin", "saffron", "nutmeg", "cardamom", "star anise", "sumac"),
    "plant": ("fiddle-leaf fig", "monstera", "peace lily", "snake plant", "basil pot", "orchid", "rubber plant"),
    "novel": (
        "Middlemarch",
        "The Remains of the Day",
        "Piranesi",
        "Stoner",
        "The Leopard",
        "Gilead",
        "Rebecca",
        "The Dispossessed",
        "Pachinko",
        "Wolf Hall",
    ),
    "shop": ("hardware store", "pharmacy", "bike shop", "garden centre", "post office", "dry cleaner", "bakery"),
    "item": ("extension cable", "picture hooks", "reading glasses", "umbrella", "phone charger", "rain jacket"),
    "sport": ("badminton", "squash", "bouldering", "table tennis", "five-a-side football", "rowing", "yoga"),
    "venue": ("leisure centre", "community hall", "sports club", "climbing wall", "school gym"),
    "instrument": ("cello", "ukulele", "piano", "clarinet", "banjo", "trumpet"),
    "film": (
        "Paris, Texas",
        "Spirited Away",
        "The Third Man",
        "Amélie",
        "Paterson",
        "Fargo",
        "Moonlight",
        "Roma",
    ),
    "bird": ("goldfinch", "wren", "nuthatch", "woodpecker", "heron", "kingfisher", "jay"),
    "city": ("Porto", "Ghent", "Ljubljana", "Bergen", "Valencia", "Kraków", "Tallinn", "Bologna", "Galway"),
    "month": ("January", "February", "April", "May", "July", "August", "October", "December"),
    "colour": ("sage green", "terracotta", "navy", "mustard yellow", "off-white", "charcoal"),
    "furniture": ("bookshelf", "wardrobe", "sideboard", "desk", "bedside table", "armchair"),
    "symptom": ("a stiff neck", "hay fever", "a sore knee", "heartburn", "a dry cough", "back pain"),
    "hobby": ("knitting", "birdwatching", "pottery", "chess", "watercolour painting", "baking bread"),
}
_SLOTS["amount"] = tuple(str(n) for n in (2, 3, 4, 5, 6, 8, 12, 15, 20, 25, 30, 40))
_SLOTS["hour"] = tuple(f"{h}:{m:02d}" for h in (7, 8, 9, 10, 11, 14, 16, 18, 19) for m in (0, 15, 30, 45))

# (note, question about it): the question names the note's topic in other words where it can.
_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("The {appliance} in the {room} started making a {noise} noise on {day}.", "Which appliance sounds odd?"),
    ("{name} recommended adding {spice} to the {dish}.", "What spice did {name} suggest for cooking?"),
    ("Water the {plant} every {day}, it wilts otherwise.", "How often does the {plant} need watering?"),
    ("Halfway through {novel}; {name} lent me her copy.", "Who lent me {novel}?"),
    ("To buy at the {shop} this week: {item}.", "What do I need from the {shop}?"),
    ("{sport} with {name} at the {venue} on {day} at {hour}.", "When am I playing {sport}?"),
    ("Started {instrument} lessons, {amount} minutes of practice a day.", "How long do I practise the {instrument}?"),
    ("Watched {film} again with {name}; still great.", "Which film did I rewatch with {name}?"),
    ("Saw a {bird} at the feeder this morning.", "What bird visited the garden feeder?"),
    ("Thinking of a long weekend in {city} in {month}.", "Where might I go for a weekend away?"),
    ("Painting the {room} walls {colour}.", "What colour will the {room} be?"),
    ("The {furniture} from the flea market needs new screws.", "What needs fixing on the {furniture}?"),
    ("GP said {symptom} should settle in {amount} days.", "What did the doctor say about {symptom}?"),
    ("{name} has taken up {hobby} and loves it.", "What new pastime did {name} start?"),
    ("The {shop} closes at {hour} on {day}s.", "When does the {shop} close?"),
    ("Made {dish} for {amount} people; halve it next time.", "How many did the {dish} recipe feed?"),
    ("{name}'s birthday is in {month}; they like {hobby}.", "When is {name}'s birthday?"),
    ("Returned the {item} to the {shop}, refund in {amount} days.", "Did I get my money back for the {item}?"),
    ("Moved the {plant} to the {room}, better light there.", "Where is the {plant} now?"),
    ("Booked a table in {city} for {amount} at {hour}.", "What reservation did I make in {city}?"),
    ("{name} borrowed my {item} on {day}.", "Who has my {item}?"),
    ("The {venue} raised the {sport} fee to {amount} pounds.", "How much does {sport} cost now?"),
    ("Tried a {dish} recipe with {spice}; too salty.", "How did the {dish} turn out?"),
    ("Assembled the {colour} {furniture} with {name}'s help.", "Who helped build the {furniture}?"),
)  # fmt: skip
_FIELD = re.compile(r"{(\w+)}")


def notes(n: int, seed: int = 20) -> list[tuple[str, str]]:
    """n distinct (note, question) pairs, the templates taken in turn so that the topics stay varied."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    attempts = 0
    while len(out) < n:
        note, question = _TEMPLATES[attempts % len(_TEMPLATES)]
        attempts += 1
        values = {field: rng.choice(_SLOTS[field]) for field in set(_FIELD.findall(note))}
        text = note.format(**values)
        if attempts > 50 * n:  # the templates ran out of combinations: number the rest
            text = f"{text} ({len(out)})"
        if text not in seen:
            seen.add(text)
            out.append((text[0].upper() + text[1:], question.format(**values)))
    return out
