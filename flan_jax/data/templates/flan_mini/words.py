"""Small bundled word lists the flan-mini generators draw from (written for this repo).

All entries are lowercase ASCII letters only, so the string and cipher tasks have exact,
easy-to-check answers. Lists are tuples (immutable) and sorted nowhere: order matters only
through the seeded generators, which index into them.
"""
from __future__ import annotations

FRUITS: tuple[str, ...] = (
    "apple", "banana", "cherry", "grape", "lemon", "mango", "melon", "peach", "pear", "plum",
    "kiwi", "lime", "orange", "papaya", "fig", "date", "apricot", "guava", "berry", "coconut",
)

ANIMALS: tuple[str, ...] = (
    "cat", "dog", "horse", "tiger", "lion", "mouse", "rabbit", "sheep", "goat", "zebra",
    "camel", "otter", "eagle", "whale", "shark", "snake", "frog", "bear", "wolf", "monkey",
)

# Plain everyday words of 3 to 6 letters for reversing, shifting and length comparisons.
SHORT_WORDS: tuple[str, ...] = (
    "cup", "pen", "map", "box", "hat", "sun", "sky", "road", "lamp", "door", "book", "milk",
    "rain", "snow", "wind", "fire", "ship", "boat", "coin", "ring", "desk", "sofa", "bread",
    "chair", "table", "water", "stone", "cloud", "river", "plant", "green", "light", "music",
    "paper", "glass", "smile", "train", "house", "candle", "garden", "window", "pocket",
    "silver", "winter", "summer", "forest", "yellow", "basket", "button", "rocket",
)

NAMES: tuple[str, ...] = (
    "Maria", "Tom", "Aiko", "Omar", "Lena", "Pedro", "Nina", "Sam", "Ravi", "Chloe",
    "Ivan", "Fatima", "Leo", "Grace", "Yusuf", "Emma", "Kofi", "Hana", "Diego", "Zoe",
)

ITEMS: tuple[str, ...] = (
    "apples", "books", "pencils", "cookies", "stamps", "shells", "candles", "tickets",
    "marbles", "flowers", "buttons", "cards",
)

PLACES: tuple[str, ...] = (
    "the market", "the library", "the park", "the station", "the bakery", "the museum",
    "school", "the harbor",
)

MONTHS: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)

COLORS: tuple[str, ...] = ("red", "blue", "green", "white", "black", "brown", "pink", "gray")
