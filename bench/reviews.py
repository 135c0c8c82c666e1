"""Wine reviews in the shape of the whole public file people download (~130,000 rows, 14 columns):
`python -m bench.reviews ROWS [PATH]` writes one.

What the real file has, and this makes (measured on 5,810 real rows of it, ARCHITECTURE.md): an `id`
column 0..n-1; country, the target, over 40 values from tens of thousands of rows down to one, and a few
rows with none; a tasting note; points 80-100; price with gaps; province, region_1, region_2 and winery,
place names that give the country away (region_1 exists for seven countries only, 16 % empty: every Chilean,
Portuguese or Austrian row has none; region_2 for the US only, 61 % empty); designation 30 %
empty; taster_name and taster_twitter_handle (tasters cover a few countries each; a handle ends in a
non-breaking space); a title unique per row that names the winery, vintage and region; variety; and
a last line cut off mid-row, as a download that stopped. The notes share their vocabulary and cues with
`reviews()`, the short 5-column reviews (country, note, points, price, variety) bench/training.py, families.py
and monitoring.py train on, so a model learns the country from the description about as well as from real notes,
and from the place names almost perfectly, as real data does.
"""

from __future__ import annotations

import csv
import io
import sys

import numpy as np
import pandas as pd

# The notes' vocabulary, shared with bench/training.py's four-column reviews. Shaped like real wine reviews
# (measured on a real 1,000-row file: four countries at about 62/17/13/7 %, ~100 varieties, most of them made in
# several countries, notes of 20-60 words of mostly generic tasting vocabulary, with a rare word that gives the
# country away, and prices with gaps). Generated data flatters a model; this tries to flatter it as little as real
# data does.
COUNTRY_SHARE = {"US": 0.62, "France": 0.17, "Italy": 0.13, "Spain": 0.08}
CUES = {  # rare, telling words (places, styles) that show up in a minority of notes
    "US": ["napa", "sonoma", "willamette", "paso robles", "california", "oregon", "washington", "jammy", "oaky", "plush"],
    "France": ["bordeaux", "burgundy", "bourgogne", "chablis", "rhône", "sancerre", "cru", "château", "domaine", "alsace"],
    "Italy": ["tuscany", "chianti", "piedmont", "barolo", "sicily", "veneto", "toscana", "riserva", "brunello", "etna"],
    "Spain": ["rioja", "ribera", "priorat", "crianza", "reserva", "galicia", "rías baixas", "navarra", "jerez", "toro"],
}
GENERIC = ("aromas of black cherry and plum lead to a palate with firm tannins and a long finish. this wine offers "
           "red fruit, spice, vanilla and toasted oak, with bright acidity and a touch of earth. notes of citrus, green "
           "apple and pear on the nose; the palate is crisp, fresh and balanced with mineral tones. ripe blackberry, "
           "cassis and chocolate flavors are framed by smooth tannins. drink now through 2030. it is soft, round and "
           "juicy, with hints of herbs, licorice, leather, tobacco and violet. a light, easy wine for everyday drinking; "
           "dense and concentrated, it needs time. peach, apricot, honey and floral notes give it a rich texture").split()
VARIETIES = ["Pinot Noir", "Chardonnay", "Cabernet Sauvignon", "Red Blend", "Bordeaux-style Red Blend", "Riesling",
             "Sauvignon Blanc", "Syrah", "Rosé", "Merlot", "Nebbiolo", "Zinfandel", "Sangiovese", "Malbec", "Tempranillo",
             "White Blend", "Sparkling Blend", "Pinot Gris", "Champagne Blend", "Grüner Veltliner", "Viognier", "Gamay",
             "Garnacha", "Pinot Grigio", "Cabernet Franc", "Petite Sirah", "Barbera", "Albariño", "Grenache", "Chenin Blanc"] + \
            [f"Local Grape {i}" for i in range(70)]  # the long tail: ~100 varieties in all
# each variety's share per country: the big international ones everywhere, a few that lean one way
# The real file's countries and their rows (of 129,971), the long tail included.
COUNTRY_ROWS = {
    "US": 54504, "France": 22093, "Italy": 19540, "Spain": 6645, "Portugal": 5691, "Chile": 4472, "Argentina": 3800,
    "Austria": 3345, "Australia": 2329, "Germany": 2165, "New Zealand": 1419, "South Africa": 1401, "Israel": 505,
    "Greece": 466, "Canada": 257, "Hungary": 146, "Bulgaria": 141, "Romania": 120, "Uruguay": 109, "Turkey": 90,
    "Slovenia": 87, "Georgia": 86, "England": 74, "Croatia": 73, "Mexico": 70, "Moldova": 59, "Brazil": 52, "Lebanon": 35,
    "Morocco": 28, "Peru": 16, "Ukraine": 14, "Serbia": 12, "Czech Republic": 12, "Macedonia": 12, "Cyprus": 11,
    "India": 9, "Switzerland": 7, "Luxembourg": 6, "Armenia": 2, "Bosnia and Herzegovina": 2, "Slovakia": 1, "China": 1,
    "Egypt": 1,
}
NO_COUNTRY = 63 / 129_971
# The countries whose rows name a region_1 (in the real file every other country's region_1 is empty, so emptiness
# alone tells a Chilean row from an Argentine one): 108,724 of 129,971 rows have one, these countries' rows less ~0.4 %.
REGION_1_COUNTRIES = {"US", "France", "Italy", "Spain", "Argentina", "Australia", "Canada"}
TASTERS = [("Roger Voss", "@vossroger"), ("Michael Schachner", "@wineschach"), ("Kerin O’Keefe", "@kerinokeefe"),
           ("Virginie Boone", "@vboone"), ("Paul Gregutt", "@paulgwine\u00a0"), ("Matt Kettmann", "@mattkettmann"),
           ("Joe Czerwinski", "@JoeCz"), ("Sean P. Sullivan", "@wawinereport"), ("Anna Lee C. Iijima", ""),
           ("Jim Gordon", "@gordone_cellars"), ("Anne Krebiehl\u00a0MW", "@AnneInVino"), ("Lauren Buzzeo", "@laurbuzz"),
           ("Susan Kostrzewa", "@suskostrzewa"), ("Mike DeSimone", "@worldwineguys"), ("Jeff Jenssen", "@worldwineguys"),
           ("Alexander Peartree", ""), ("Carrie Dykes", ""), ("Fiona Adams", "@bkfiona"), ("Christina Pickard", "@winewchristina")]
SYLLABLES = ["val", "mont", "ri", "sa", "lo", "ber", "cas", "tel", "do", "mar", "ca", "go", "ran", "vi", "ne", "ro", "la",
             "ter", "bel", "cor", "san", "ta", "ma", "ria", "pe", "dro", "al", "to", "fon", "ti"]
HEADER = ["id", "country", "description", "designation", "points", "price", "province", "region_1", "region_2",
          "taster_name", "taster_twitter_handle", "title", "variety", "winery"]


def _names(rng: np.random.Generator, count: int, prefix: str = "") -> list[str]:
    """`count` distinct made-up place or estate names."""
    found: dict[str, None] = {}
    while len(found) < count:
        parts = rng.choice(SYLLABLES, rng.integers(2, 5))  # 2-4 syllables: ~840,000 names to draw from
        found[(prefix + "".join(parts)).capitalize()] = None
    return list(found)


def _places(rng: np.random.Generator) -> dict[str, dict]:
    """Per country: provinces, their regions, wineries and designations (names no other country uses), the tasters
    who review it, its cue words."""
    places = {}
    for i, country in enumerate(COUNTRY_ROWS):
        n = COUNTRY_ROWS[country]
        provinces = _names(rng, int(np.clip(n ** 0.3, 1, 30)), prefix=country[:2])
        places[country] = {
            "provinces": provinces,
            "regions": {p: _names(rng, int(rng.integers(1, 12)), prefix=p[:3]) for p in provinces},
            "wineries": _names(rng, int(np.clip(n // 8, 1, 6000)), prefix=country[:1] + "w"),
            # Paul Gregutt (whose handle ends in the non-breaking space) reviews US wines, as in the real file
            "tasters": [TASTERS[(i * 3 + k) % len(TASTERS)] for k in range(int(rng.integers(1, 4)))] + ([TASTERS[4]] if country == "US" else []),
            "cues": CUES.get(country) or [country.lower().split()[0], *(p.lower() for p in provinces[:4])],
            "region_2": _names(rng, 17, prefix="Us") if country == "US" else [],
        }
    return places


def generate(rows: int, seed: int = 0, cut_last_line: bool = True) -> bytes:
    """A CSV of `rows` reviews (and, with `cut_last_line`, one more row cut off mid-way), in the real file's shape."""
    rng = np.random.default_rng(seed)
    places = _places(np.random.default_rng(1))  # the same world at every size and seed
    names = list(COUNTRY_ROWS)
    share = np.array(list(COUNTRY_ROWS.values()), dtype=float)
    countries = rng.choice(names, rows, p=share / share.sum())
    # the smallest countries keep at least one row at every size, as in the file
    tail = [c for c, n in COUNTRY_ROWS.items() if n <= 2][: max(1, rows // 1000)]
    countries[rng.choice(rows, len(tail), replace=False)] = tail
    designations = _names(rng, min(max(50, rows // 4), 40_000), prefix="Cu")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for i, country in enumerate(countries):
        where = places[country]
        words = list(rng.choice(GENERIC, rng.integers(20, 61)))
        if rng.random() < 0.6:  # a telling word in most notes, and now and then a misleading one
            words.insert(int(rng.integers(len(words))), str(rng.choice(where["cues"])))
        if rng.random() < 0.08:
            other = places[names[int(rng.integers(12))]]["cues"]
            words.insert(int(rng.integers(len(words))), str(rng.choice(other)))
        province = where["provinces"][min(int(rng.zipf(1.8)) - 1, len(where["provinces"]) - 1)]  # one province leads, as California does
        named = rng.random() > 0.004 and country in REGION_1_COUNTRIES  # one draw a row whatever the country: the stream stays
        region_1 = str(rng.choice(where["regions"][province])) if named else ""
        region_2 = str(rng.choice(where["region_2"])) if where["region_2"] and rng.random() < 0.85 else ""
        winery = str(where["wineries"][min(int(rng.pareto(1.2) * 3), len(where["wineries"]) - 1)])
        designation = designations[int(rng.integers(len(designations)))] if rng.random() > 0.3 else ""
        variety = VARIETIES[int(rng.zipf(1.6)) % len(VARIETIES)]
        taster, handle = where["tasters"][int(rng.integers(len(where["tasters"])))] if rng.random() > 0.21 else ("", "")
        price = f"{rng.lognormal(3.4, 0.6):.0f}" if rng.random() > 0.07 else ""
        points = int(np.clip(round(rng.normal(88, 3)), 80, 100))
        vintage = int(rng.integers(1990, 2017))
        title = f"{winery} {vintage} {designation + ' ' if designation else ''}{variety} ({region_1 or province})"
        label = "" if rng.random() < NO_COUNTRY else country
        writer.writerow([i, label, " ".join(words).capitalize() + ".", designation, points, price,
                         province if label else "", region_1, region_2, taster, handle, title, variety, winery])
    body = out.getvalue()
    if cut_last_line:  # a download that stopped: the next row, half written
        body += f"{rows},Italy,\"Aromas of ripe cherry and a to"
    return body.encode()


RNG_VARIETIES = np.random.default_rng(7)
VARIETY_WEIGHTS = {c: RNG_VARIETIES.dirichlet(np.full(len(VARIETIES), 0.15)) for c in COUNTRY_SHARE}


def reviews(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    names = list(COUNTRY_SHARE)
    country = rng.choice(names, rows, p=list(COUNTRY_SHARE.values()))
    records = []
    for c in country:
        words = list(rng.choice(GENERIC, rng.integers(20, 61)))
        # a telling word in most notes, and now and then one that points elsewhere
        if rng.random() < 0.7:
            words.insert(rng.integers(len(words)), str(rng.choice(CUES[c])))
        if rng.random() < 0.08:
            words.insert(rng.integers(len(words)), str(rng.choice(CUES[names[rng.integers(len(names))]])))
        note = " ".join(words).capitalize() + "."
        variety = VARIETIES[rng.choice(len(VARIETIES), p=VARIETY_WEIGHTS[c])]
        base = {"US": 3.6, "France": 3.5, "Italy": 3.4, "Spain": 3.1}[c]
        price = float(round(rng.lognormal(base, 0.6))) if rng.random() > 0.07 else np.nan
        points = int(np.clip(round(rng.normal(88 + (price > 40 if price == price else 0), 3)), 80, 100))
        records.append({"country": c, "description": note, "points": points, "price": price, "variety": variety})
    frame = pd.DataFrame(records)
    # the index people's files carry: ids of rows sampled from a larger export, shuffled, not 0..n-1
    frame.index = rng.choice(200_000, rows, replace=False)
    return frame


if __name__ == "__main__":
    data = generate(int(sys.argv[1]))
    if len(sys.argv) > 2:
        open(sys.argv[2], "wb").write(data)  # noqa: SIM115
    else:
        sys.stdout.buffer.write(data)
