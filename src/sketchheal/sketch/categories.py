"""QuickDraw's category names (the 345 words of Google's Quick, Draw! dataset) and the paper's 17.

Names are exactly as in Google's files, spaces and capitals kept: ``"The Great Wall of China"`` is stored as
``The Great Wall of China.npz`` (the URL quotes the spaces). Sorted case-insensitively.
"""

from __future__ import annotations

import difflib

from sketchheal.config import PAPER_CATEGORIES

__all__ = ["QUICKDRAW_CATEGORIES", "PAPER_CATEGORIES", "resolve_category", "suggest_categories"]

QUICKDRAW_CATEGORIES: tuple[str, ...] = (
    "aircraft carrier", "airplane", "alarm clock", "ambulance", "angel", "animal migration", "ant", "anvil", "apple",
    "arm", "asparagus", "axe", "backpack", "banana", "bandage", "barn", "baseball", "baseball bat", "basket",
    "basketball", "bat", "bathtub", "beach", "bear", "beard", "bed", "bee", "belt", "bench", "bicycle", "binoculars",
    "bird", "birthday cake", "blackberry", "blueberry", "book", "boomerang", "bottlecap", "bowtie", "bracelet",
    "brain", "bread", "bridge", "broccoli", "broom", "bucket", "bulldozer", "bus", "bush", "butterfly", "cactus",
    "cake", "calculator", "calendar", "camel", "camera", "camouflage", "campfire", "candle", "cannon", "canoe",
    "car", "carrot", "castle", "cat", "ceiling fan", "cell phone", "cello", "chair", "chandelier", "church",
    "circle", "clarinet", "clock", "cloud", "coffee cup", "compass", "computer", "cookie", "cooler", "couch", "cow",
    "crab", "crayon", "crocodile", "crown", "cruise ship", "cup", "diamond", "dishwasher", "diving board", "dog",
    "dolphin", "donut", "door", "dragon", "dresser", "drill", "drums", "duck", "dumbbell", "ear", "elbow",
    "elephant", "envelope", "eraser", "eye", "eyeglasses", "face", "fan", "feather", "fence", "finger",
    "fire hydrant", "fireplace", "firetruck", "fish", "flamingo", "flashlight", "flip flops", "floor lamp", "flower",
    "flying saucer", "foot", "fork", "frog", "frying pan", "garden", "garden hose", "giraffe", "goatee", "golf club",
    "grapes", "grass", "guitar", "hamburger", "hammer", "hand", "harp", "hat", "headphones", "hedgehog",
    "helicopter", "helmet", "hexagon", "hockey puck", "hockey stick", "horse", "hospital", "hot air balloon",
    "hot dog", "hot tub", "hourglass", "house", "house plant", "hurricane", "ice cream", "jacket", "jail",
    "kangaroo", "key", "keyboard", "knee", "knife", "ladder", "lantern", "laptop", "leaf", "leg", "light bulb",
    "lighter", "lighthouse", "lightning", "line", "lion", "lipstick", "lobster", "lollipop", "mailbox", "map",
    "marker", "matches", "megaphone", "mermaid", "microphone", "microwave", "monkey", "moon", "mosquito",
    "motorbike", "mountain", "mouse", "moustache", "mouth", "mug", "mushroom", "nail", "necklace", "nose", "ocean",
    "octagon", "octopus", "onion", "oven", "owl", "paint can", "paintbrush", "palm tree", "panda", "pants",
    "paper clip", "parachute", "parrot", "passport", "peanut", "pear", "peas", "pencil", "penguin", "piano",
    "pickup truck", "picture frame", "pig", "pillow", "pineapple", "pizza", "pliers", "police car", "pond", "pool",
    "popsicle", "postcard", "potato", "power outlet", "purse", "rabbit", "raccoon", "radio", "rain", "rainbow",
    "rake", "remote control", "rhinoceros", "rifle", "river", "roller coaster", "rollerskates", "sailboat",
    "sandwich", "saw", "saxophone", "school bus", "scissors", "scorpion", "screwdriver", "sea turtle", "see saw",
    "shark", "sheep", "shoe", "shorts", "shovel", "sink", "skateboard", "skull", "skyscraper", "sleeping bag",
    "smiley face", "snail", "snake", "snorkel", "snowflake", "snowman", "soccer ball", "sock", "speedboat", "spider",
    "spoon", "spreadsheet", "square", "squiggle", "squirrel", "stairs", "star", "steak", "stereo", "stethoscope",
    "stitches", "stop sign", "stove", "strawberry", "streetlight", "string bean", "submarine", "suitcase", "sun",
    "swan", "sweater", "swing set", "sword", "syringe", "t-shirt", "table", "teapot", "teddy-bear", "telephone",
    "television", "tennis racquet", "tent", "The Eiffel Tower", "The Great Wall of China", "The Mona Lisa", "tiger",
    "toaster", "toe", "toilet", "tooth", "toothbrush", "toothpaste", "tornado", "tractor", "traffic light", "train",
    "tree", "triangle", "trombone", "truck", "trumpet", "umbrella", "underwear", "van", "vase", "violin",
    "washing machine", "watermelon", "waterslide", "whale", "wheel", "windmill", "wine bottle", "wine glass",
    "wristwatch", "yoga", "zebra", "zigzag",
)

_BY_LOWER = {c.lower(): c for c in QUICKDRAW_CATEGORIES}


def suggest_categories(name: str, n: int = 3) -> list[str]:
    """Up to ``n`` QuickDraw category names close to ``name`` (difflib, case-insensitive)."""
    matches = difflib.get_close_matches(name.lower(), list(_BY_LOWER), n=n, cutoff=0.6)
    return [_BY_LOWER[m] for m in matches]


def resolve_category(name: str) -> str:
    """The QuickDraw spelling of ``name`` (matched case-insensitively, surrounding spaces and ``.npz`` ignored).

    Raises ``ValueError`` for an unknown name, suggesting close matches.
    """
    key = name.strip()
    if key.lower().endswith(".npz"):
        key = key[:-4]
    found = _BY_LOWER.get(key.lower())
    if found is not None:
        return found
    close = suggest_categories(key)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"unknown QuickDraw category {name!r}{hint} (`sketchheal download --list` shows all 345)")
