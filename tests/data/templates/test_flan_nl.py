"""flan-nl: answers checked against tables typed again here, content-disjoint splits, balance,
determinism across processes, rendering, seqio tasks, mixtures and bad input."""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
from collections import Counter

import pytest

from flan_jax.data.templates import flan_nl
from flan_jax.data.templates.flan_nl import _source
from flan_jax.data.templates.lint import lint_catalogue
from flan_jax.data.templates.render import example_options, render
from flan_jax.errors import FlanJaxError

SPECS = flan_nl.all_datasets()
BY_NAME = {s.name: s for s in SPECS}
SPLITS = ("train", "validation", "test")


def _rows(spec, split, n=None):
    src = spec.sources[spec.name]
    return src.generate(src.split_seeds[split], src.split_sizes[split] if n is None else n)


# --- independent answer checks: facts typed again here, parsed from the rendered strings -------

SIZE_M = {  # rough real sizes in metres, for the things of nl_size_compare listed here
    "an ant": 0.004, "a pea": 0.008, "a coin": 0.02, "a grain of rice": 0.006, "a bee": 0.015,
    "an apple": 0.08, "an egg": 0.06, "a pencil": 0.18, "a mouse": 0.09, "a lemon": 0.08,
    "a cat": 0.5, "a laptop": 0.35, "a rabbit": 0.4, "a football": 0.22, "a watermelon": 0.35,
    "a sofa": 2.0, "a bicycle": 1.7, "a fridge": 1.8, "a door": 2.0, "a sheep": 1.3,
    "a car": 4.5, "a horse": 2.4, "a cow": 2.5, "a bus": 12, "a giraffe": 5,
    "a house": 12, "a whale": 25, "a ship": 200, "a church": 40, "a skyscraper": 300,
    "a mountain": 3000, "a city": 15000, "an ocean": 5e6, "a continent": 7e6, "a lake": 5000,
}
COLOUR = {"a ripe banana": "yellow", "fresh snow": "white", "coal": "black", "a carrot": "orange",
          "a ripe tomato": "red", "the sky on a clear day": "blue", "a crow": "black",
          "an elephant": "grey", "a plum": "purple", "milk chocolate": "brown", "a frog": "green"}
CAN = {"fly": {"an eagle", "a sparrow", "an owl", "a bat", "a parrot"},
       "breathe under water": {"a shark", "a salmon", "a goldfish", "a trout"},
       "lay eggs": {"a chicken", "a duck", "a frog", "a turtle"},
       "climb trees": {"a monkey", "a squirrel", "a koala"},
       "jump very high": {"a kangaroo", "a flea"}}
CANNOT = {"a dog", "a cow", "a pig", "an elephant", "a horse", "a sheep", "a whale", "a snail",
          "a tortoise", "a hippopotamus", "a camel"}
OPPOSITE = {"hot": "cold", "wet": "dry", "rich": "poor", "buy": "sell", "day": "night",
            "full": "empty", "alive": "dead", "early": "late", "north": "south", "win": "lose"}
SAME = {"big": "large", "start": "begin", "sick": "ill", "shut": "close", "stone": "rock",
        "mistake": "error", "sofa": "couch", "shout": "yell"}
KIND = {"a tulip": "a flower", "a hammer": "a tool", "a salmon": "a fish", "a robin": "a bird",
        "a violin": "a musical instrument", "a tram": "a vehicle", "a wasp": "an insect",
        "a carrot": "a vegetable", "a mango": "a fruit", "a wardrobe": "a piece of furniture"}
COUNTRY = {"Paris": "France", "Lyon": "France", "Madrid": "Spain", "Seville": "Spain",
           "Rome": "Italy", "Milan": "Italy", "Berlin": "Germany", "Munich": "Germany",
           "Tokyo": "Japan", "Osaka": "Japan", "Toronto": "Canada", "Sydney": "Australia",
           "Cairo": "Egypt", "Lisbon": "Portugal", "Dublin": "Ireland",
           "Chicago": "the United States", "Mumbai": "India", "Seoul": "South Korea"}
# Adjective pairs of nl_synonym_swap / nl_negation_swap, typed again: same meaning or opposite.
SYNONYM_PAIRS = {("happy", "glad"), ("tired", "exhausted"), ("angry", "furious"),
                 ("quiet", "silent"), ("clever", "smart"), ("rich", "wealthy"),
                 ("brave", "courageous"), ("polite", "courteous"), ("ill", "sick"),
                 ("scared", "afraid"), ("busy", "occupied"), ("cheerful", "jolly")}
ANTONYM_PAIRS = {("happy", "sad"), ("tired", "rested"), ("angry", "calm"), ("quiet", "noisy"),
                 ("clever", "foolish"), ("rich", "poor"), ("brave", "cowardly"),
                 ("polite", "rude"), ("ill", "healthy"), ("scared", "fearless"),
                 ("busy", "idle"), ("cheerful", "gloomy"), ("open", "closed"), ("full", "empty"),
                 ("awake", "asleep"), ("wet", "dry"), ("true", "false"), ("clean", "dirty"),
                 ("heavy", "light"), ("hot", "cold")}
# One cue per sentence of nl_sentiment, typed from reading the lists: (positive, negative).
SENTIMENT_CUES = (
    ("perfectly", "sturdy", "five minutes", "worth every", "love it", "better than",
     "perfect condition", "again without", "looks great", "Highly", "superb", "gripped",
     "beautiful", "laugh and cry", "masterpiece", "gorgeous", "cannot wait", "sharp and funny",
     "best film", "wonderful", "delicious", "friendly", "generous", "fresh", "heavenly",
     "hardly", "very fair", "cosy", "definitely be back", "Best pasta"),
    ("stopped working", "flimsy", "useless", "waste of", "scratched", "much worse",
     "never answered", "sent it back", "ugly", "Avoid", "wooden", "no sense", "fell asleep",
     "fall completely flat", "painfully slow", "a mess", "clumsy", "two hours back",
     "worst film", "look cheap", "tasteless", "rude", "tiny", "an hour", "outrageous",
     "dirty", "tasted off", "cramped", "never go back", "Worst pasta"),
)
TOPIC_CUES = {
    "sports": ("cup final", "derby", "marathon", "Tennis", "sack their coach", "swimming",
               "basketball", "Rain stops play"),
    "science": ("comet", "genome", "mice", "neutrino", "beetle", "telescope", "bees", "battery"),
    "politics": ("election", "tax bill", "mayor", "budget", "immigration", "peace talks",
                 "polls", "hospitals"),
    "business": ("Shares", "interest rates", "million dollars", "Oil prices", "new stores",
                 "profits", "Factory orders", "stock market"),
    "cooking": ("dinner party", "sauce", "stew", "should I boil", "should I roast",
                "should I fry", "should I steam", "should I bake", "should I grill"),
    "travel": ("visit", "pack for a trip", "flights", "holiday abroad"),
    "health": ("hurt after", "safe with a weak", "doctor", "stretching"),
    "computers": ("get so hot", "freezes", "memory", "screen"),
    "clothing": ("coat", "shirt", "jeans", "scarf", "jacket", "jumper", "dress", "socks"),
    "electronics": ("headphones", "charger", "television", "laptop", "camera", "speaker",
                    "tablet", "keyboard"),
    "garden": ("mower", "flower pots", "hose", "rake", "seeds", "wheelbarrow", "trimmer",
               "watering can"),
    "groceries": ("rice", "spaghetti", "olive oil", "cereal", "coffee", "tea bags",
                  "tomato sauce", "oats"),
}


def _sentiment(row):
    sentences = re.split(r"(?<=\.) ", row["review"])[1:]
    assert len(sentences) == 2
    labels = set()
    for s in sentences:
        pos = any(c in s for c in SENTIMENT_CUES[0])
        neg = any(c in s for c in SENTIMENT_CUES[1])
        assert pos != neg, s
        labels.add("positive" if pos else "negative")
    assert len(labels) == 1
    return labels.pop()


def _topic(labels):
    def check(row):
        hits = [label for label in labels if any(c in row["text"] for c in TOPIC_CUES[label])]
        return hits[0] if len(hits) == 1 else f"<cues {hits}>"
    return check


def _nli_people(row):
    m = re.fullmatch(r"(\w+)(?: is a| works as a|, a) (\w+)(?: who lives in| in|, has lived in)"
                     r" ([\w ]+?)(?: for many years)?\.", row["premise"])
    name, job, city = m.groups()
    h = row["hypothesis"]
    yes = {f"{name} lives in {COUNTRY[city]}.", f"{name} has a job.", f"{name} lives in a city.",
           f"Someone in {COUNTRY[city]} works as a {job}."}
    no = {f"{name} has never been to {COUNTRY[city]}.", f"{name} does not have a job.",
          f"Nobody in {city} works as a {job}.", f"{name} has never lived in {city}."}
    return "yes" if h in yes else "no" if h in no else "it is not possible to tell"


def _nli_market(row):
    h = row["hypothesis"]
    if re.search(r"bought some fruit|went shopping on|bought more than two|visited", h):
        return "yes"
    if re.search(r"did not buy any|stayed at home|bought only one|has never been", h):
        return "no"
    return "it is not possible to tell"


def _nli_animals(row):
    verb = re.search(r" is (sleeping|eating|running|making a lot of noise) ", row["premise"])[1]
    h = row["hypothesis"]
    yes = {"sleeping": ("resting", "asleep"), "eating": ("meal", "eating"),
           "running": ("moving", "running"), "making a lot of noise": ("noisy", "making noise")}
    no = {"sleeping": ("running around", "wide awake"), "eating": ("not eating", "fast asleep"),
          "running": ("lying still", "asleep"), "making a lot of noise": ("silent", "quiet")}
    if h.startswith("There is an animal"):
        return "yes"
    if h.startswith("There is no animal"):
        return "no"
    if any(w in h for w in no[verb]):
        return "no"
    if any(w in h for w in yes[verb]):
        return "yes"
    return "it is not possible to tell"


def _size(row):
    a, b = row["choices"]
    if a in SIZE_M and b in SIZE_M:
        return a if SIZE_M[a] > SIZE_M[b] else b
    return row["answer"]  # not in the typed table: checked structurally below


def _lookup(table):
    def check(row):
        key = row.get("word", row.get("thing"))
        return table.get(key, row["answer"])
    return check


def _ability(row):
    can = [c for c in row["choices"] if c in CAN[row["ability"]]]
    assert not any(c in CAN[row["ability"]] for c in row["choices"] if c != row["answer"])
    return can[0] if can else row["answer"]


def _swap_words(row):
    w1, w2 = row["sentence1"].split(), row["sentence2"].split()
    diff = [(x.strip("."), y.strip(".")) for x, y in zip(w1, w2) if x != y]
    assert len(w1) == len(w2) and len(diff) == 1, row
    pair = diff[0]
    if pair in SYNONYM_PAIRS or pair[::-1] in SYNONYM_PAIRS:
        return "yes"
    assert pair in ANTONYM_PAIRS or pair[::-1] in ANTONYM_PAIRS, pair
    return "no"


def _roles(sentence):
    passive = re.fullmatch(r"(.+) was (\w+) by (.+)\.", sentence)
    if passive:
        return passive[3].lower(), passive[2], passive[1].lower()
    active = re.fullmatch(r"(.+?) (\w+ed) (.+)\.", sentence)
    return active[1].lower(), active[2], active[3].lower()


def _negation_value(sentence):
    """The sentence with 'not X' rewritten to the antonym of X, lower case."""
    words = sentence.rstrip(".").split()
    for i, w in enumerate(words[:-1]):
        if w == "not":
            target = words[i + 1]
            opposite = [b if a == target else a for a, b in ANTONYM_PAIRS if target in (a, b)]
            return " ".join(words[:i] + opposite + words[i + 2:]).lower()
    return " ".join(words).lower()


CHECKS = {
    "nl_product_review": _sentiment, "nl_movie_review": _sentiment,
    "nl_restaurant_review": _sentiment,
    "nl_news_topic": _topic(("sports", "science", "politics", "business")),
    "nl_question_topic": _topic(("cooking", "travel", "health", "computers")),
    "nl_shop_department": _topic(("clothing", "electronics", "garden", "groceries")),
    "nl_nli_people": _nli_people, "nl_nli_market": _nli_market, "nl_nli_animals": _nli_animals,
    "nl_size_compare": _size, "nl_colour": _lookup(COLOUR), "nl_animal_ability": _ability,
    "nl_synonym_swap": _swap_words,
    "nl_voice_swap": lambda r: "yes" if _roles(r["sentence1"]) == _roles(r["sentence2"]) else "no",
    "nl_negation_swap": lambda r: "yes" if _negation_value(r["sentence1"])
    == _negation_value(r["sentence2"]) else "no",
    "nl_antonym": _lookup(OPPOSITE | {v: k for k, v in OPPOSITE.items()}),
    "nl_synonym": _lookup(SAME | {v: k for k, v in SAME.items()}),
    "nl_hypernym": _lookup(KIND),
}


def test_catalogue_shape_and_lint():
    assert len(flan_nl.CLUSTERS) == 6 and len(BY_NAME) == len(SPECS) == 18
    assert {s.cluster for s in SPECS} == set(flan_nl.CLUSTERS)
    assert flan_nl.HELD_OUT_CLUSTER in flan_nl.CLUSTERS
    assert flan_nl.HELD_OUT_CLUSTER not in flan_nl.HELD_IN_CLUSTERS
    assert lint_catalogue(SPECS) == []
    for spec in SPECS:
        assert len(spec.templates) == 10
        assert len({(t.inputs, t.targets) for t in spec.templates}) == 10, spec.name
        assert spec.has_options and spec.metric == "accuracy", spec.name
        # no inverted templates, so no eval variant can show the answer in its inputs
        assert not any(t.inverted for t in spec.templates), spec.name


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_answers_independently_correct(name):
    spec = BY_NAME[name]
    checked = 0
    for split in SPLITS:
        for row in _rows(spec, split, 200):
            assert set(row) == set(spec.fields)
            assert row["answer"] == CHECKS[name](row), row
            opts = example_options(spec, row)
            assert row["answer"] in opts and len(set(opts)) == len(opts), row
            checked += 1
    assert checked == 600


def test_typed_tables_are_exercised():
    """The table lookups above really fire (a check that always fell back would prove nothing)."""
    sizes = [r for r in _rows(BY_NAME["nl_size_compare"], "train")
             if all(c in SIZE_M for c in r["choices"])]
    colours = [r for r in _rows(BY_NAME["nl_colour"], "train") if r["thing"] in COLOUR]
    kinds = [r for r in _rows(BY_NAME["nl_hypernym"], "train") if r["word"] in KIND]
    abilities = [r for r in _rows(BY_NAME["nl_animal_ability"], "train")
                 if r["answer"] in CAN[r["ability"]]]
    assert min(len(sizes), len(colours), len(kinds), len(abilities)) >= 50


def test_size_pairs_are_two_classes_apart():
    from flan_jax.data.templates.flan_nl.commonsense import SIZE_CLASSES

    size_class = {thing: i for i, things in enumerate(SIZE_CLASSES) for thing in things}
    assert len(size_class) == sum(len(c) for c in SIZE_CLASSES)  # no thing in two classes
    for row in _rows(BY_NAME["nl_size_compare"], "test"):
        small = next(c for c in row["choices"] if c != row["answer"])
        assert size_class[row["answer"]] - size_class[small] >= 2


def _content(row) -> tuple[str, ...]:
    """Order-free content of a row: every string in it, sorted (coarser than the split key)."""
    values = []
    for v in row.values():
        values += v if isinstance(v, list) else [v]
    return tuple(sorted(values))


def test_splits_disjoint_by_content_and_eval_rows_unique():
    for spec in SPECS:
        seen = {split: [_content(r) for r in _rows(spec, split)] for split in SPLITS}
        for split in ("validation", "test"):
            assert len(set(seen[split])) == len(seen[split]), (spec.name, split)
        train, val, test = (set(seen[s]) for s in SPLITS)
        assert not train & val and not train & test and not val & test, spec.name


def test_labels_and_answer_positions_balanced():
    for spec in SPECS:
        for split in SPLITS:
            rows = _rows(spec, split)
            if spec.options_field:
                labels = Counter(r["choices"].index(r["answer"]) for r in rows)
                k = len(rows[0]["choices"])
            else:
                labels = Counter(r["answer"] for r in rows)
                k = len(spec.options)
            assert len(labels) == k, (spec.name, split)
            assert max(labels.values()) - min(labels.values()) <= 1, (spec.name, split, labels)


def test_a_shorter_draw_is_a_prefix_of_the_split():
    for spec in SPECS:
        for split in SPLITS:
            full = _rows(spec, split)
            assert _rows(spec, split, 7) == full[:7] and _rows(spec, split, 1) == full[:1]
            # labels are not in a fixed cycle (the blocks are shuffled)
            first = [r["choices"].index(r["answer"]) if spec.options_field else r["answer"]
                     for r in full[:40]]
            k = len(set(first))
            assert first[:k] * (40 // k) != first[:k * (40 // k)], spec.name


def test_test_split_has_at_least_400_examples_per_cluster():
    for cluster in flan_nl.CLUSTERS:
        n = sum(len(_rows(spec, "test")) for spec in flan_nl.cluster_datasets(cluster))
        assert n >= 400, cluster


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_every_template_renders_with_and_without_options(name):
    spec = BY_NAME[name]
    for row in _rows(spec, "validation", 30):
        for t in range(len(spec.templates)):
            for with_options in (True, False):
                inputs, targets = render(spec, t, row, with_options=with_options)
                assert targets == row["answer"]
                assert ("\n\nOPTIONS:\n- " in inputs) == with_options
                assert 0 < len(inputs) < 400 and "{" not in inputs
                if with_options:
                    shown = inputs.split("\n\nOPTIONS:\n- ", 1)[1].split("\n- ")
                    assert shown == list(example_options(spec, row))


def test_bad_input_is_a_flan_jax_error():
    with pytest.raises(FlanJaxError, match="nl_nope"):
        flan_nl.cluster_datasets("nl_nope")
    src = SPECS[0].sources[SPECS[0].name]
    with pytest.raises(_source.UnknownSplitSeedError, match="seed 12345 is not a split seed"):
        src.generate(12345, 3)


_DIGEST_SCRIPT = """
import hashlib, json
from flan_jax.data.templates import flan_nl
h = hashlib.sha256()
for spec in flan_nl.all_datasets():
    src = spec.sources[spec.name]
    for split, n in src.split_sizes.items():
        h.update(json.dumps(src.generate(src.split_seeds[split], n), sort_keys=True).encode())
print(h.hexdigest())
"""


@pytest.mark.slow
def test_deterministic_across_processes():
    digests = []
    for hash_seed in ("0", "777"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT], env=env, check=True,
                             capture_output=True, text=True)
        digests.append(out.stdout.strip())
    assert digests[0] == digests[1]
    h = hashlib.sha256()  # and the same in this process, asked twice
    for spec in SPECS:
        src = spec.sources[spec.name]
        for split, n in src.split_sizes.items():
            rows = src.generate(src.split_seeds[split], n)
            assert rows == src.generate(src.split_seeds[split], n)
            h.update(json.dumps(rows, sort_keys=True).encode())
    assert h.hexdigest() == digests[0]


def test_mixtures_resolve_and_held_out_families_exclude_their_cluster():
    from flan_jax.data.mixing import mixtures

    decls, _ = mixtures.load_files()
    every = mixtures.resolve("flan_nl_all", decls)
    assert len(every) == 36  # 18 datasets x (zs_opt, zs_noopt)
    assert all(leaf.share == pytest.approx(1 / 36) for leaf in every)  # 2000 rows each, cap 3000
    assert len(mixtures.resolve("flan_nl_eval", decls)) == 18
    # FLAN's rule (flan/task_splits.py): NLI and paraphrase are held out together
    together = {"nl_nli": {"nl_paraphrase"}, "nl_paraphrase": {"nl_nli"}}
    for cluster in flan_nl.CLUSTERS:
        train = mixtures.resolve(f"flan_nl_heldout_no_{cluster}", decls)
        shares = mixtures.group_shares(train, "cluster")
        excluded = {cluster} | together.get(cluster, set())
        assert set(shares) == set(flan_nl.CLUSTERS) - excluded
        assert math.isclose(sum(shares.values()), 1.0)
        held = mixtures.resolve(f"flan_nl_heldout_{cluster}_eval", decls)
        assert {leaf.cluster for leaf in held} == {cluster}
        assert sorted(leaf.task for leaf in held) == sorted(
            f"flan_nl.{s.name}:eval" for s in flan_nl.cluster_datasets(cluster))


@pytest.mark.slow
def test_eval_tasks_strings_do_not_depend_on_the_vocabulary():
    """The seqio eval tasks render the same strings with the project's default vocabulary and
    with a byte vocabulary: the data are text, a vocabulary only tokenizes them."""
    import seqio

    from flan_jax.data.tasks import registry as tasks

    from flan_jax.data.tasks import catalogue

    def read(collection, vocabulary):
        out = {}
        for spec in SPECS:
            (name,) = tasks.register_dataset_tasks(spec, vocabulary, collection=collection,
                                                   variants=["eval"])
            ds = seqio.get_mixture_or_task(name).get_dataset(
                None, split="validation", shuffle=False, use_cached=False)
            for ex in ds.take(3).as_numpy_iterator():
                decoded = vocabulary.decode(ex["inputs"].tolist())
                assert decoded == ex["inputs_pretokenized"].decode(), name
                options = [o.decode() for o in ex["options"]]
                assert ex["answer"].decode() in options, name
                out.setdefault(spec.name, []).append(
                    (ex["inputs_pretokenized"].decode(), ex["targets_pretokenized"].decode(),
                     tuple(options)))
        return out

    names = catalogue.register_flan_nl_tasks(variants=["eval"])
    assert sorted(names) == sorted(f"flan_nl.{s.name}:eval" for s in SPECS)
    default = read("flan_nl", tasks.default_vocabulary())
    assert default == read("flan_nl_bytes", seqio.ByteVocabulary())
    spec = SPECS[0]
    first = _rows(spec, "validation", 1)[0]
    assert default[spec.name][0][0] == render(spec, 0, first, with_options=True)[0]


def test_no_template_control_shows_only_the_inputs():
    bare = {s.name: s for s in flan_nl.no_template_datasets()}
    assert sorted(bare) == sorted(BY_NAME)
    nli = bare["nl_nli_people"]
    row = {"premise": "Omar is a baker who lives in Lyon.", "hypothesis": "Omar lives in France.",
           "answer": "yes"}
    assert render(nli, 0, row, with_options=False) == (
        "Omar is a baker who lives in Lyon.\nOmar lives in France.", "yes")
    assert render(nli, 0, row, with_options=True)[0] == (
        "Omar is a baker who lives in Lyon.\nOmar lives in France.\n\nOPTIONS:\n- yes\n"
        "- it is not possible to tell\n- no")
    size = bare["nl_size_compare"]
    row = {"a": "an ant", "b": "a house", "choices": ["an ant", "a house"], "answer": "a house"}
    assert render(size, 0, row, with_options=True)[0] == (
        "an ant\na house\n\nOPTIONS:\n- an ant\n- a house")
    for spec in bare.values():
        assert len(spec.templates) == 1 and spec.sources == BY_NAME[spec.name].sources
        for row in _rows(spec, "validation", 5):
            inputs, targets = render(spec, 0, row, with_options=False)
            shown = [v for k, v in row.items() if k not in ("answer", "choices")]
            assert inputs.split("\n") == shown and targets == row["answer"]


def test_no_template_mixtures_mirror_the_instruction_mixtures():
    from flan_jax.data.mixing import mixtures

    decls, _ = mixtures.load_files()
    for cluster in flan_nl.CLUSTERS:
        tuned = mixtures.resolve(f"flan_nl_heldout_no_{cluster}", decls)
        control = mixtures.resolve(f"flan_nl_no_template_heldout_no_{cluster}", decls)
        assert [(leaf.task.replace("flan_nl.", "flan_nl_no_template.", 1), leaf.share)
                for leaf in tuned] == [(leaf.task, leaf.share) for leaf in control]
        assert cluster not in {leaf.cluster for leaf in control}
